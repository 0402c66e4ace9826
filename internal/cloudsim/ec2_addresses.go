package cloudsim

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// lcState is the state of the models the lifecycle package relies on,
// beyond instances: Elastic IPs (this file), EBS volumes as resources
// (ec2_volumes.go), ELBv2 target groups (elbv2.go) and replace-root-volume
// tasks (ec2_rootvolume.go). Guarded by Sim.mu.
type lcState struct {
	addrs     map[string]*address // by allocation ID
	addrOrder []*address
	vols      map[string]*ebsVolume // by volume ID; volumes of instances are added lazily
	tgs       map[string]*targetGroup
	tgOrder   []*targetGroup
	rootTasks map[string]*rootTask
	rootOrder []*rootTask
	rootToken map[string]*rootTask
}

func (s *Sim) initLifecycle() {
	s.lc = lcState{
		addrs:     map[string]*address{},
		vols:      map[string]*ebsVolume{},
		tgs:       map[string]*targetGroup{},
		rootTasks: map[string]*rootTask{},
		rootToken: map[string]*rootTask{},
	}
}

// Elastic IP error codes. Source: "Error codes for the Amazon EC2 API".
const (
	codeAllocationNotFound  = "InvalidAllocationID.NotFound"
	codeAssociationNotFound = "InvalidAssociationID.NotFound"
	codeAlreadyAssociated   = "Resource.AlreadyAssociated"
)

// address is an Elastic IP address (VPC domain).
type address struct {
	allocID, publicIP string
	assocID           string
	instance          *instance // nil when not associated
	tags              map[string]string
}

// AllocateAddress allocates an Elastic IP address for use in the VPC. The
// public IPs come from 198.51.100.0/24 (TEST-NET-2, RFC 5737).
func (c *EC2) AllocateAddress(ctx context.Context, params *ec2.AllocateAddressInput, optFns ...func(*ec2.Options)) (*ec2.AllocateAddressOutput, error) {
	if params == nil {
		params = &ec2.AllocateAddressInput{}
	}
	s := c.sim
	var out *ec2.AllocateAddressOutput
	err := s.call(ctx, svcEC2, "AllocateAddress", nil, func(now time.Time) error {
		tags := map[string]string{}
		for _, ts := range params.TagSpecifications {
			kv, err := validateTags(ts.Tags)
			if err != nil {
				return err
			}
			for _, t := range kv {
				tags[t.key] = t.value
			}
		}
		if aws.ToBool(params.DryRun) {
			return errDryRun()
		}
		n := len(s.lc.addrOrder)
		a := &address{
			allocID:  s.newID("eipalloc-"),
			publicIP: ipString(198<<24 | 51<<16 | 100<<8 | uint32(1+n%254)),
			tags:     tags,
		}
		s.lc.addrs[a.allocID] = a
		s.lc.addrOrder = append(s.lc.addrOrder, a)
		out = &ec2.AllocateAddressOutput{AllocationId: ptr(a.allocID), PublicIp: ptr(a.publicIP), Domain: types.DomainTypeVpc}
		return nil
	})
	return out, err
}

// AssociateAddress associates an Elastic IP with an instance (its primary
// private IP). An address already associated elsewhere moves only with
// AllowReassociation (else Resource.AlreadyAssociated); an address that the
// instance had before is disassociated, as the primary private IP holds one
// public IP. The instance must be running or stopped.
func (c *EC2) AssociateAddress(ctx context.Context, params *ec2.AssociateAddressInput, optFns ...func(*ec2.Options)) (*ec2.AssociateAddressOutput, error) {
	if params == nil {
		params = &ec2.AssociateAddressInput{}
	}
	s := c.sim
	var out *ec2.AssociateAddressOutput
	err := s.call(ctx, svcEC2, "AssociateAddress", nil, func(now time.Time) error {
		a, err := s.findAddress(aws.ToString(params.AllocationId), aws.ToString(params.PublicIp))
		if err != nil {
			return err
		}
		id := aws.ToString(params.InstanceId)
		if id == "" {
			return errMissing("InstanceId")
		}
		ins, err := s.lookupInstances(now, []string{id})
		if err != nil {
			return err
		}
		in := ins[0]
		switch in.state {
		case types.InstanceStateNameRunning, types.InstanceStateNameStopped:
		default:
			return apiError(codeIncorrectState, "The instance '%s' is not in a valid state for this operation.", id)
		}
		if a.instance != nil && a.instance != in && !aws.ToBool(params.AllowReassociation) {
			return apiError(codeAlreadyAssociated, "resource %s is already associated with associate-id %s", a.allocID, a.assocID)
		}
		if aws.ToBool(params.DryRun) {
			return errDryRun()
		}
		if a.instance == in {
			out = &ec2.AssociateAddressOutput{AssociationId: ptr(a.assocID)}
			return nil
		}
		for _, other := range s.lc.addrOrder {
			if other.instance == in {
				other.instance, other.assocID = nil, ""
			}
		}
		a.instance = in
		a.assocID = s.newID("eipassoc-")
		out = &ec2.AssociateAddressOutput{AssociationId: ptr(a.assocID)}
		return nil
	})
	return out, err
}

// DisassociateAddress removes an association by AssociationId (or PublicIp).
func (c *EC2) DisassociateAddress(ctx context.Context, params *ec2.DisassociateAddressInput, optFns ...func(*ec2.Options)) (*ec2.DisassociateAddressOutput, error) {
	if params == nil {
		params = &ec2.DisassociateAddressInput{}
	}
	s := c.sim
	err := s.call(ctx, svcEC2, "DisassociateAddress", nil, func(now time.Time) error {
		var a *address
		if assoc := aws.ToString(params.AssociationId); assoc != "" {
			for _, x := range s.lc.addrOrder {
				if x.assocID == assoc {
					a = x
				}
			}
			if a == nil {
				return apiError(codeAssociationNotFound, "The association ID '%s' does not exist", assoc)
			}
		} else {
			var err error
			if a, err = s.findAddress("", aws.ToString(params.PublicIp)); err != nil {
				return err
			}
		}
		if aws.ToBool(params.DryRun) {
			return errDryRun()
		}
		a.instance, a.assocID = nil, ""
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ec2.DisassociateAddressOutput{}, nil
}

func (s *Sim) findAddress(allocID, publicIP string) (*address, error) {
	switch {
	case allocID != "":
		if a := s.lc.addrs[allocID]; a != nil {
			return a, nil
		}
		return nil, apiError(codeAllocationNotFound, "The allocation ID '%s' does not exist", allocID)
	case publicIP != "":
		for _, a := range s.lc.addrOrder {
			if a.publicIP == publicIP {
				return a, nil
			}
		}
		return nil, apiError("InvalidAddress.NotFound", "Address '%s' not found.", publicIP)
	}
	return nil, errMissing("AllocationId")
}

// addrInstance returns the instance an address is associated with, dropping
// an association whose instance has terminated (EC2 disassociates an
// Elastic IP when its instance terminates).
func (s *Sim) addrInstance(a *address) *instance {
	if in := a.instance; in != nil && (in.expired || in.state == types.InstanceStateNameTerminated) {
		a.instance, a.assocID = nil, ""
	}
	return a.instance
}

func addressFields(s *Sim) filterFields[*address] {
	one := func(f func(a *address) string) func(*address) []string {
		return func(a *address) []string {
			if v := f(a); v != "" {
				return []string{v}
			}
			return nil
		}
	}
	return filterFields[*address]{
		tags: func(a *address) map[string]string { return a.tags },
		fields: map[string]func(*address) []string{
			"allocation-id":  one(func(a *address) string { return a.allocID }),
			"association-id": one(func(a *address) string { return a.assocID }),
			"public-ip":      one(func(a *address) string { return a.publicIP }),
			"domain":         one(func(a *address) string { return string(types.DomainTypeVpc) }),
			"instance-id": one(func(a *address) string {
				if in := s.addrInstance(a); in != nil {
					return in.id
				}
				return ""
			}),
			"private-ip-address": one(func(a *address) string {
				if in := s.addrInstance(a); in != nil && in.ip != 0 {
					return ipString(in.ip)
				}
				return ""
			}),
		},
	}
}

// DescribeAddresses describes Elastic IPs by allocation ID, public IP
// and the filters allocation-id, association-id, public-ip, domain,
// instance-id, private-ip-address and tags. It is not paginated, as EC2's.
func (c *EC2) DescribeAddresses(ctx context.Context, params *ec2.DescribeAddressesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeAddressesOutput, error) {
	if params == nil {
		params = &ec2.DescribeAddressesInput{}
	}
	s := c.sim
	var out *ec2.DescribeAddressesOutput
	err := s.call(ctx, svcEC2, "DescribeAddresses", nil, func(now time.Time) error {
		fs, err := compileFilters(params.Filters, addressFields(s))
		if err != nil {
			return err
		}
		var sel []*address
		for _, id := range params.AllocationIds {
			a, err := s.findAddress(id, "")
			if err != nil {
				return err
			}
			sel = append(sel, a)
		}
		for _, ip := range params.PublicIps {
			a, err := s.findAddress("", ip)
			if err != nil {
				return err
			}
			sel = append(sel, a)
		}
		if len(params.AllocationIds)+len(params.PublicIps) == 0 {
			sel = s.lc.addrOrder
		}
		if aws.ToBool(params.DryRun) {
			return errDryRun()
		}
		out = &ec2.DescribeAddressesOutput{Addresses: []types.Address{}}
		for _, a := range sel {
			if !matchAll(fs, a) {
				continue
			}
			x := types.Address{AllocationId: ptr(a.allocID), PublicIp: ptr(a.publicIP), Domain: types.DomainTypeVpc,
				PublicIpv4Pool: ptr("amazon"), NetworkBorderGroup: ptr(s.opts.Region), Tags: sdkTags(a.tags)}
			if in := s.addrInstance(a); in != nil {
				x.AssociationId = ptr(a.assocID)
				x.InstanceId = ptr(in.id)
				if in.ip != 0 {
					x.PrivateIpAddress = ptr(ipString(in.ip))
				}
				x.NetworkInterfaceOwnerId = ptr(accountID)
			}
			out.Addresses = append(out.Addresses, x)
		}
		return nil
	})
	return out, err
}

// AddressOf returns the public IP associated with instance id, if any (a
// test helper).
func (s *Sim) AddressOf(id string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	for _, a := range s.lc.addrOrder {
		if in := s.addrInstance(a); in != nil && in.id == id {
			return a.publicIP, true
		}
	}
	return "", false
}
