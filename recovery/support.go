package recovery

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops/internal/awserr"
)

// ReasonCode says why AWS cannot recover an instance.
type ReasonCode string

// The requirements of CloudWatch action based recovery and simplified
// automatic recovery (see the package documentation for the sources).
const (
	// ReasonTypeUnsupported: DescribeInstanceTypes reports
	// AutoRecoverySupported false for the instance type.
	ReasonTypeUnsupported ReasonCode = "instance-type-unsupported"
	// ReasonTypeUnknown: DescribeInstanceTypes does not know the type.
	ReasonTypeUnknown ReasonCode = "instance-type-unknown"
	// ReasonInstanceStore: the type has instance store volumes, "an
	// unsupported configuration for automatic instance recovery".
	ReasonInstanceStore ReasonCode = "instance-store-volumes"
	// ReasonInstanceStoreRoot: the root device is an instance store volume.
	ReasonInstanceStoreRoot ReasonCode = "instance-store-root-device"
	// ReasonHostTenancy: the instance runs on a Dedicated Host (tenancy
	// host); Dedicated Host auto recovery applies instead.
	ReasonHostTenancy ReasonCode = "dedicated-host-tenancy"
	// ReasonEFA: an Elastic Fabric Adapter is attached.
	ReasonEFA ReasonCode = "elastic-fabric-adapter"
	// ReasonNotInVPC: the instance is not in a VPC (EC2-Classic).
	ReasonNotInVPC ReasonCode = "not-in-vpc"
	// ReasonNotFound: a listed instance does not exist or is terminated.
	ReasonNotFound ReasonCode = "instance-not-found"
)

// Reason is one requirement an instance does not meet.
type Reason struct {
	Code   ReasonCode
	Detail string
}

func (r Reason) String() string { return string(r.Code) + ": " + r.Detail }

// Support is what AWS can do for one instance.
type Support struct {
	InstanceID   string
	InstanceType string
	State        types.InstanceStateName
	// Supported: CloudWatch action based recovery (the recover action) and
	// simplified automatic recovery can recover the instance after a
	// system status check failure.
	Supported bool
	// Reasons lists every requirement not met; empty when Supported.
	Reasons []Reason
	// EBSBacked: the root device is an EBS volume, so stop/start (which
	// moves the instance to other hardware) is possible.
	EBSBacked bool
	// InstanceStore: the type has instance store volumes, whose data a
	// stop/start or a replacement loses.
	InstanceStore bool
	// AutoRecovery is MaintenanceOptions.AutoRecovery as DescribeInstances
	// reports it ("default", "disabled"; "" when not reported).
	AutoRecovery types.InstanceAutoRecoveryState
}

// typeInfo is what detection needs of an instance type.
type typeInfo struct {
	known, autoRecovery, instanceStore bool
}

// DetectorOptions configures a Detector. Zero values are safe defaults.
type DetectorOptions struct {
	// RateShare is the share of the account's published EC2 request rates
	// the Detector may use, in (0, 1]. Zero means 1.
	RateShare float64
	// TimeScale compresses client-side pacing and retry delays for a
	// simulated cloud whose time runs compressed (cloudsim's
	// Options.TimeScale): buckets refill 1/TimeScale times faster. Leave it
	// zero (meaning 1) against AWS.
	TimeScale float64
	// MaxRetries bounds the retries of a throttled or failed call. Zero
	// means 8.
	MaxRetries int
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
}

// Detector answers, per instance, whether AWS can recover it and why not.
// It caches instance type facts, which do not change. It is safe for
// concurrent use.
type Detector struct {
	api  InstanceAPI
	call *caller

	mu    sync.Mutex
	types map[string]typeInfo
}

// NewDetector returns a Detector that describes instances and types with api.
func NewDetector(api InstanceAPI, optFns ...func(*DetectorOptions)) *Detector {
	o := DetectorOptions{}
	for _, f := range optFns {
		f(&o)
	}
	return &Detector{api: api, call: newCaller(o.RateShare, o.TimeScale, o.MaxRetries, o.Logger), types: map[string]typeInfo{}}
}

// NewDetectorFromConfig returns a Detector with an EC2 client made from cfg.
func NewDetectorFromConfig(cfg aws.Config, optFns ...func(*DetectorOptions)) *Detector {
	return NewDetector(ec2.NewFromConfig(cfg), optFns...)
}

// Detect describes the fleet (DescribeInstances, chunked) and its instance
// types (DescribeInstanceTypes, at most 100 types a call, cached) and
// returns one Support per instance, sorted by instance ID. Listed IDs that
// do not exist come back unsupported with ReasonNotFound.
func (d *Detector) Detect(ctx context.Context, fleet Fleet) ([]Support, error) {
	if err := fleet.validate("fleet"); err != nil {
		return nil, err
	}
	ins, missing, err := describeFleet(ctx, d.api, d.call, fleet)
	if err != nil {
		return nil, err
	}
	out, err := d.DetectInstances(ctx, ins)
	if err != nil {
		return nil, err
	}
	for _, id := range missing {
		out = append(out, Support{InstanceID: id, Reasons: []Reason{{ReasonNotFound, "no such instance (or terminated, or not matching the fleet's filters)"}}})
	}
	slices.SortFunc(out, func(a, b Support) int { return strings.Compare(a.InstanceID, b.InstanceID) })
	return out, nil
}

// DetectInstances is Detect for instances already described.
func (d *Detector) DetectInstances(ctx context.Context, instances []types.Instance) ([]Support, error) {
	var names []string
	for _, in := range instances {
		names = append(names, string(in.InstanceType))
	}
	if err := d.loadTypes(ctx, names); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Support, 0, len(instances))
	for _, in := range instances {
		out = append(out, supportOf(in, d.types[string(in.InstanceType)]))
	}
	return out, nil
}

// supportOf applies the documented requirements to one instance.
func supportOf(in types.Instance, t typeInfo) Support {
	s := Support{
		InstanceID:   aws.ToString(in.InstanceId),
		InstanceType: string(in.InstanceType),
		EBSBacked:    in.RootDeviceType != types.DeviceTypeInstanceStore,
		// instance store on the type, or an ephemeral mapping
		InstanceStore: t.instanceStore,
	}
	if in.State != nil {
		s.State = in.State.Name
	}
	if in.MaintenanceOptions != nil {
		s.AutoRecovery = in.MaintenanceOptions.AutoRecovery
	}
	add := func(c ReasonCode, format string, args ...any) {
		s.Reasons = append(s.Reasons, Reason{c, fmt.Sprintf(format, args...)})
	}
	switch {
	case !t.known:
		add(ReasonTypeUnknown, "DescribeInstanceTypes does not describe %s", s.InstanceType)
	case !t.autoRecovery:
		add(ReasonTypeUnsupported, "%s: AutoRecoverySupported is false", s.InstanceType)
	}
	if t.instanceStore {
		add(ReasonInstanceStore, "%s has instance store volumes", s.InstanceType)
	}
	if !s.EBSBacked {
		add(ReasonInstanceStoreRoot, "the root device is an instance store volume")
	}
	if in.Placement != nil && in.Placement.Tenancy == types.TenancyHost {
		add(ReasonHostTenancy, "the instance runs on Dedicated Host %s; use Dedicated Host auto recovery", aws.ToString(in.Placement.HostId))
	}
	for _, ni := range in.NetworkInterfaces {
		if aws.ToString(ni.InterfaceType) == "efa" || aws.ToString(ni.InterfaceType) == "efa-only" {
			add(ReasonEFA, "network interface %s is an Elastic Fabric Adapter", aws.ToString(ni.NetworkInterfaceId))
			break
		}
	}
	if aws.ToString(in.VpcId) == "" && s.State != types.InstanceStateNameStopped {
		add(ReasonNotInVPC, "the instance is not in a VPC")
	}
	s.Supported = len(s.Reasons) == 0
	return s
}

// loadTypes describes the instance types not yet cached, 100 a call.
func (d *Detector) loadTypes(ctx context.Context, names []string) error {
	d.mu.Lock()
	var need []types.InstanceType
	for _, n := range slices.Compact(slices.Sorted(slices.Values(names))) {
		if _, ok := d.types[n]; !ok && n != "" {
			need = append(need, types.InstanceType(n))
		}
	}
	d.mu.Unlock()
	for chunk := range slices.Chunk(need, maxTypesPerCall) {
		got, err := d.describeTypes(ctx, chunk)
		if err != nil {
			return err
		}
		d.mu.Lock()
		for _, n := range chunk {
			d.types[string(n)] = got[string(n)] // unknown: zero value, known false
		}
		d.mu.Unlock()
	}
	return nil
}

func (d *Detector) describeTypes(ctx context.Context, names []types.InstanceType) (map[string]typeInfo, error) {
	got := map[string]typeInfo{}
	in := &ec2.DescribeInstanceTypesInput{InstanceTypes: names}
	for {
		var out *ec2.DescribeInstanceTypesOutput
		err := d.call.do(ctx, "ec2:DescribeInstanceTypes", func() (err error) {
			out, err = d.api.DescribeInstanceTypes(ctx, in)
			return err
		})
		if err != nil {
			if len(names) > 1 && isInvalidType(err) {
				// One unknown name fails the call: describe them one by one.
				for _, n := range names {
					one, err := d.describeTypes(ctx, []types.InstanceType{n})
					if err != nil {
						return nil, err
					}
					for k, v := range one {
						got[k] = v
					}
				}
				return got, nil
			}
			if len(names) == 1 && isInvalidType(err) {
				return got, nil
			}
			return nil, fmt.Errorf("describe instance types: %w", err)
		}
		for _, t := range out.InstanceTypes {
			got[string(t.InstanceType)] = typeInfo{known: true,
				autoRecovery:  aws.ToBool(t.AutoRecoverySupported),
				instanceStore: aws.ToBool(t.InstanceStorageSupported)}
		}
		if aws.ToString(out.NextToken) == "" {
			return got, nil
		}
		in.NextToken = out.NextToken
	}
}

func isInvalidType(err error) bool {
	c := awserr.Code(err)
	return c == "InvalidInstanceType" || c == "InvalidParameterValue"
}
