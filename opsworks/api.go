package opsworks

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/ec2ops/ec2ops/patching"
)

//go:generate go run go.uber.org/mock/mockgen@v0.6.0 -source=api.go -destination=opsworksmock/mocks.go -package=opsworksmock

// EC2API is what the Configurator calls on EC2: it resolves each layer's
// tag selector to running instances, with the exact signature of
// *ec2.Client.
type EC2API interface {
	DescribeInstances(ctx context.Context, params *ec2.DescribeInstancesInput, optFns ...func(*ec2.Options)) (*ec2.DescribeInstancesOutput, error)
}

// CommandRunner runs one Run Command request at fleet scale and returns
// what every instance did. *patching.Runner implements it: every Chef,
// Ansible, Puppet and bootstrap run goes through patching's rate controls,
// batching, per-instance results and cancellation.
type CommandRunner interface {
	Run(ctx context.Context, cmd patching.Command) (*patching.Result, error)
}

var (
	_ EC2API        = (*ec2.Client)(nil)
	_ CommandRunner = (*patching.Runner)(nil)
)
