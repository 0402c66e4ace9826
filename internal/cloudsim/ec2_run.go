package cloudsim

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Limits of RunInstances. Sources: RunInstances API reference (ClientToken
// "up to 64 ASCII characters", UserData "limited to 16 KB" before base64).
const (
	maxClientToken = 64
	maxUserData    = 16 * 1024
)

// RunInstances launches instances. See the package documentation for what
// is modelled: validation, ClientToken idempotency, placement, tags at
// launch, the pending -> running state machine, throttling and faults.
func (c *EC2) RunInstances(ctx context.Context, params *ec2.RunInstancesInput, optFns ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error) {
	if params == nil {
		params = &ec2.RunInstancesInput{}
	}
	s := c.sim
	var out *ec2.RunInstancesOutput
	err := s.call(ctx, svcEC2, "RunInstances", func() int { return s.runResources(params) }, func(now time.Time) (err error) {
		out, err = s.runInstances(now, params)
		return err
	})
	return out, err
}

// runResources is the number of resource tokens a RunInstances call needs:
// one per instance, none when it repeats an earlier request (idempotent).
func (s *Sim) runResources(in *ec2.RunInstancesInput) int {
	if t := aws.ToString(in.ClientToken); t != "" && s.ec2.tokens[t] != nil {
		return 0
	}
	return max(0, int(aws.ToInt32(in.MaxCount)))
}

// fingerprint returns the request without ClientToken and DryRun in JSON:
// it identifies "the same request" for idempotency and doubles as a deep
// copy of the launch spec.
func fingerprint(in *ec2.RunInstancesInput) ([]byte, error) {
	cp := *in
	cp.ClientToken, cp.DryRun = nil, nil
	return json.Marshal(&cp)
}

// placement is where a RunInstances call puts its instances.
type placement struct {
	subnet *subnet
	sgs    []types.GroupIdentifier
}

func (s *Sim) runInstances(now time.Time, in *ec2.RunInstancesInput) (*ec2.RunInstancesOutput, error) {
	token := aws.ToString(in.ClientToken)
	if len(token) > maxClientToken {
		return nil, errInvalidValue("ClientToken", token, fmt.Sprintf("It must be at most %d characters.", maxClientToken))
	}
	fp, err := fingerprint(in)
	if err != nil {
		return nil, apiError(codeInvalidParameter, "The request cannot be encoded: %v", err)
	}
	if r := s.ec2.tokens[token]; token != "" && r != nil {
		// Idempotent retry: the same reservation again, nothing launched.
		if r.fingerprint != string(fp) {
			return nil, apiError(codeIdempotentMismatch, "Arguments on this idempotent request are inconsistent with arguments used in previous request(s).")
		}
		if aws.ToBool(in.DryRun) {
			return nil, errDryRun()
		}
		return s.reservationOutput(r), nil
	}
	if err := s.validateRun(in); err != nil {
		return nil, err
	}
	imageID := aws.ToString(in.ImageId)
	if imageID == "" {
		if imageID, err = s.launchTemplateImage(in.LaunchTemplate); err != nil {
			return nil, err
		}
	}
	if imageID == "" {
		return nil, errMissing("ImageId")
	}
	if !validID(imageID, "ami-") {
		return nil, errMalformed(codeAMIMalformed, imageID, "ami-...")
	}
	if err := s.imageUsable(imageID); err != nil {
		return nil, err
	}
	itype := string(in.InstanceType)
	if itype == "" {
		itype = string(types.InstanceTypeM5Large)
	}
	if a, b, ok := strings.Cut(itype, "."); !ok || a == "" || b == "" {
		return nil, apiError(codeInvalidParameter, "Invalid value '%s' for InstanceType.", itype)
	}
	pl, err := s.place(in)
	if err != nil {
		return nil, err
	}
	tags, err := launchTags(in.TagSpecifications)
	if err != nil {
		return nil, err
	}
	if aws.ToBool(in.DryRun) {
		return nil, errDryRun()
	}
	if s.chance(s.opts.Faults.CapacityRate) {
		return nil, apiError(codeCapacity, "We currently do not have sufficient %s capacity in the Availability Zone you requested (%s). Our system will be working on provisioning additional capacity. You can currently get %s capacity by not specifying an Availability Zone in your request or choosing a different Availability Zone.", itype, pl.subnet.az, itype)
	}
	// Addresses: launch as many as MaxCount, at least MinCount.
	var ips []uint32
	for range int(aws.ToInt32(in.MaxCount)) {
		ip, ok := pl.subnet.alloc()
		if !ok {
			break
		}
		ips = append(ips, ip)
	}
	if len(ips) < int(aws.ToInt32(in.MinCount)) {
		for _, ip := range ips {
			pl.subnet.release(ip)
		}
		return nil, apiError(codeInsufficientAddrsSub, "There are not enough free addresses in subnet '%s' to satisfy the requested number of instances.", pl.subnet.id)
	}

	spec := new(ec2.RunInstancesInput)
	if err := json.Unmarshal(fp, spec); err != nil {
		return nil, apiError(codeInternal, "An internal error has occurred")
	}
	r := &reservation{id: s.newID("r-"), token: token, fingerprint: string(fp)}
	sysTags := launchTemplateTags(in.LaunchTemplate)
	for i, ip := range ips {
		id := s.newID("i-")
		inst := &instance{
			seq:         s.ec2.launchSeq,
			id:          id,
			res:         r,
			spec:        spec,
			rng:         s.resourceRand(id),
			created:     now,
			imageID:     imageID,
			itype:       itype,
			subnet:      pl.subnet,
			ip:          ip,
			launchIndex: int32(i),
			sgs:         pl.sgs,
			tags:        cloneMap(tags),
			sysTags:     sysTags,
		}
		s.ec2.launchSeq++
		// Draw the impairment first so that the latency draws that follow do
		// not depend on ImpairedRate.
		inst.badBoot = inst.rng.Float64() < s.opts.Faults.ImpairedRate
		inst.volumes = s.volumes(spec)
		r.instances = append(r.instances, inst)
		s.ec2.byID[id] = inst
		s.ec2.order = append(s.ec2.order, inst)
	}
	for _, inst := range r.instances {
		s.boot(now, inst)
	}
	if token != "" {
		s.ec2.tokens[token] = r
	}
	return s.reservationOutput(r), nil
}

func (s *Sim) reservationOutput(r *reservation) *ec2.RunInstancesOutput {
	out := &ec2.RunInstancesOutput{
		Groups:        []types.GroupIdentifier{},
		OwnerId:       ptr(accountID),
		ReservationId: ptr(r.id),
	}
	for _, in := range r.instances {
		out.Instances = append(out.Instances, s.sdkInstance(in))
	}
	return out
}

// validateRun checks the parameters that do not need the Sim's state.
func (s *Sim) validateRun(in *ec2.RunInstancesInput) error {
	if in.MinCount == nil {
		return errMissing("MinCount")
	}
	if in.MaxCount == nil {
		return errMissing("MaxCount")
	}
	if n := *in.MinCount; n < 1 {
		return errInvalidValue("MinCount", n, "Expected a positive integer.")
	}
	if *in.MaxCount < *in.MinCount {
		return errInvalidValue("MaxCount", *in.MaxCount, "It must be greater than or equal to MinCount.")
	}
	if in.UserData != nil {
		raw, err := base64.StdEncoding.DecodeString(*in.UserData)
		if err != nil {
			return apiError(codeInvalidParameter, "Invalid BASE64 encoding of user data.")
		}
		if len(raw) > maxUserData {
			return apiError(codeInvalidParameter, "User data is limited to %d bytes.", maxUserData)
		}
	}
	if m := in.MetadataOptions; m != nil {
		if h := m.HttpPutResponseHopLimit; h != nil && (*h < 1 || *h > 64) {
			return errInvalidValue("HttpPutResponseHopLimit", *h, "It must be between 1 and 64.")
		}
		if t := m.HttpTokens; t != "" && !slices.Contains(t.Values(), t) {
			return errInvalidValue("HttpTokens", t, "")
		}
	}
	return nil
}

// place chooses the subnet: SubnetId (or the first network interface's),
// else the default subnet of Placement.AvailabilityZone, else the next AZ
// round-robin.
func (s *Sim) place(in *ec2.RunInstancesInput) (placement, error) {
	var pl placement
	subnetID := aws.ToString(in.SubnetId)
	var groupIDs []string
	groupIDs = append(groupIDs, in.SecurityGroupIds...)
	if len(in.NetworkInterfaces) > 0 {
		ni := in.NetworkInterfaces[0]
		if subnetID == "" {
			subnetID = aws.ToString(ni.SubnetId)
		}
		groupIDs = append(groupIDs, ni.Groups...)
	}
	az := ""
	if in.Placement != nil {
		az = aws.ToString(in.Placement.AvailabilityZone)
	}
	switch {
	case subnetID != "":
		pl.subnet = s.ec2.subnetsBy[subnetID]
		if pl.subnet == nil {
			return pl, apiError(codeSubnetNotFound, "The subnet ID '%s' does not exist", subnetID)
		}
		if az != "" && az != pl.subnet.az {
			return pl, apiError(codeInvalidParameter, "The Availability Zone %s does not match the Availability Zone %s of subnet %s.", az, pl.subnet.az, subnetID)
		}
	case az != "":
		for _, n := range s.ec2.subnets {
			if n.az == az {
				pl.subnet = n
			}
		}
		if pl.subnet == nil {
			return pl, apiError(codeInvalidParameter, "Invalid availability zone: [%s]", az)
		}
	default:
		pl.subnet = s.ec2.subnets[s.ec2.rr%len(s.ec2.subnets)]
		s.ec2.rr++
	}
	for _, g := range groupIDs {
		pl.sgs = append(pl.sgs, types.GroupIdentifier{GroupId: ptr(g), GroupName: ptr(g)})
	}
	for _, name := range in.SecurityGroups {
		id := s.ec2.sgID
		if name != "default" {
			id = fmt.Sprintf("sg-0%016x", mix64(s.seed^hashString(name)))
		}
		pl.sgs = append(pl.sgs, types.GroupIdentifier{GroupId: ptr(id), GroupName: ptr(name)})
	}
	if len(pl.sgs) == 0 {
		pl.sgs = []types.GroupIdentifier{{GroupId: ptr(s.ec2.sgID), GroupName: ptr("default")}}
	}
	return pl, nil
}

// launchTags returns the tags for the instances from TagSpecifications.
// Tags for volumes, network interfaces and spot requests are accepted and
// not kept.
func launchTags(specs []types.TagSpecification) (map[string]string, error) {
	tags := map[string]string{}
	for _, ts := range specs {
		switch ts.ResourceType {
		case types.ResourceTypeInstance:
		case types.ResourceTypeVolume, types.ResourceTypeNetworkInterface, types.ResourceTypeSpotInstancesRequest:
			if _, err := validateTags(ts.Tags); err != nil {
				return nil, err
			}
			continue
		default:
			return nil, apiError(codeInvalidParameter, "'%s' is not a valid taggable resource type for this operation.", ts.ResourceType)
		}
		kv, err := validateTags(ts.Tags)
		if err != nil {
			return nil, err
		}
		for _, t := range kv {
			tags[t.key] = t.value
		}
	}
	if len(tags) > maxTagsPerResource {
		return nil, errTagLimit()
	}
	return tags, nil
}

// launchTemplateTags are the system tags EC2 puts on an instance launched
// from a launch template. A template given by name gets a stable made-up ID.
func launchTemplateTags(lt *types.LaunchTemplateSpecification) map[string]string {
	if lt == nil {
		return nil
	}
	id := aws.ToString(lt.LaunchTemplateId)
	if id == "" {
		id = fmt.Sprintf("lt-0%016x", mix64(hashString(aws.ToString(lt.LaunchTemplateName))))
	}
	v := aws.ToString(lt.Version)
	if v == "" || v == "$Latest" || v == "$Default" {
		v = "1"
	}
	return map[string]string{"aws:ec2launchtemplate:id": id, "aws:ec2launchtemplate:version": v}
}

// volumes returns the EBS volumes of a new instance: the root volume and
// every EBS mapping of the request (a mapping for the root device replaces
// the default root volume).
func (s *Sim) volumes(spec *ec2.RunInstancesInput) []volume {
	vols := []volume{{device: rootDevice, id: s.newID("vol-"), deleteOnTermination: true}}
	for _, m := range spec.BlockDeviceMappings {
		if m.Ebs == nil || m.NoDevice != nil {
			continue
		}
		v := volume{device: aws.ToString(m.DeviceName), deleteOnTermination: m.Ebs.DeleteOnTermination == nil || *m.Ebs.DeleteOnTermination}
		if v.device == rootDevice {
			vols[0].deleteOnTermination = v.deleteOnTermination
			continue
		}
		v.id = s.newID("vol-")
		vols = append(vols, v)
	}
	return vols
}

// rootDevice is the root device name of every simulated AMI (Amazon Linux's).
const rootDevice = "/dev/xvda"

// imageUsable is the hook through which an image registry decides whether
// RunInstances may launch a well-formed AMI ID (InvalidAMIID.NotFound,
// InvalidAMIID.Unavailable, ...). Without a registry every AMI is usable
// (ec2_images.go: until an image is registered, unless ImageOptions.Strict).
func (s *Sim) imageUsable(id string) error { return s.imageUsableLocked(id) }

// launchTemplateImage is the hook through which a launch template registry
// supplies the AMI of a request that names a template but no ImageId.
// Without a registry it supplies none (and ImageId stays required).
func (s *Sim) launchTemplateImage(lt *types.LaunchTemplateSpecification) (string, error) {
	return s.launchTemplateImageLocked(lt) // ec2_launchtemplates.go
}

func cloneMap(m map[string]string) map[string]string {
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}
