package cloudsim

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// EC2InstanceAPI is the instance part of the EC2 API the simulator serves,
// with the exact method signatures of *ec2.Client.
type EC2InstanceAPI interface {
	RunInstances(ctx context.Context, params *ec2.RunInstancesInput, optFns ...func(*ec2.Options)) (*ec2.RunInstancesOutput, error)
	DescribeInstances(ctx context.Context, params *ec2.DescribeInstancesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
	DescribeInstanceStatus(ctx context.Context, params *ec2.DescribeInstanceStatusInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstanceStatusOutput, error)
	DescribeInstanceAttribute(ctx context.Context, params *ec2.DescribeInstanceAttributeInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstanceAttributeOutput, error)
	TerminateInstances(ctx context.Context, params *ec2.TerminateInstancesInput, optFns ...func(*ec2.Options)) (*ec2.TerminateInstancesOutput, error)
	StopInstances(ctx context.Context, params *ec2.StopInstancesInput, optFns ...func(*ec2.Options)) (*ec2.StopInstancesOutput, error)
	StartInstances(ctx context.Context, params *ec2.StartInstancesInput, optFns ...func(*ec2.Options)) (*ec2.StartInstancesOutput, error)
	RebootInstances(ctx context.Context, params *ec2.RebootInstancesInput, optFns ...func(*ec2.Options)) (*ec2.RebootInstancesOutput, error)
	CreateTags(ctx context.Context, params *ec2.CreateTagsInput, optFns ...func(*ec2.Options)) (*ec2.CreateTagsOutput, error)
	DescribeTags(ctx context.Context, params *ec2.DescribeTagsInput, optFns ...func(*ec2.Options)) (*ec2.DescribeTagsOutput, error)
	DeleteTags(ctx context.Context, params *ec2.DeleteTagsInput, optFns ...func(*ec2.Options)) (*ec2.DeleteTagsOutput, error)
}

var (
	_ EC2InstanceAPI = (*ec2.Client)(nil)
	_ EC2InstanceAPI = (*EC2)(nil)
)

// EC2 is a simulated EC2 client. Every EC2 client of one Sim shares its
// state. The optFns arguments of its methods are accepted and ignored.
type EC2 struct {
	sim    *Sim
	region string // image calls' Region; "" is the Sim's (ec2_images.go: EC2In)
}

// EC2 returns an EC2 client of s.
func (s *Sim) EC2() *EC2 { return &EC2{sim: s} }

// initEC2 creates the VPC, one default subnet per AZ and the registries
// (tag targets, filters) of the EC2 instance model.
func (s *Sim) initEC2() {
	e := &s.ec2
	e.vpcID = s.newID("vpc-")
	e.sgID = s.newID("sg-")
	e.subnetsBy = map[string]*subnet{}
	e.byID = map[string]*instance{}
	e.tokens = map[string]*reservation{}
	// Split 10.0.0.0/16 into equal power-of-two subnets, one per AZ.
	parts := uint32(1)
	for parts < uint32(len(s.opts.AZs)) {
		parts <<= 1
	}
	size := uint32(1<<16) / parts
	for i, az := range s.opts.AZs {
		n := &subnet{id: s.newID("subnet-"), az: az, base: 10<<24 | uint32(i)*size, size: size, used: map[uint32]bool{}}
		e.subnets = append(e.subnets, n)
		e.subnetsBy[n.id] = n
	}
	e.fields = s.instanceFilterFields()
	e.statusF = s.statusFilterFields()
	e.tagKinds = append(e.tagKinds, s.instanceTagKind())
}

// Subnets returns the default subnet ID of each AZ, by AZ name.
func (s *Sim) Subnets() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(map[string]string, len(s.ec2.subnets))
	for _, n := range s.ec2.subnets {
		m[n.az] = n.id
	}
	return m
}

// VPCID returns the ID of the Sim's VPC.
func (s *Sim) VPCID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ec2.vpcID
}
