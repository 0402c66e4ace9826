package main

import (
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"go.uber.org/mock/gomock"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/lifecycle"
	"github.com/ec2ops/ec2ops/lifecycle/lifecyclemock"
)

// TestReadmeMockSnippet is the gomock example of README.md, kept compiling
// and passing here.
func TestReadmeMockSnippet(t *testing.T) {
	ctrl := gomock.NewController(t)
	api := lifecyclemock.NewMockEC2API(ctrl)
	api.EXPECT().DescribeInstances(gomock.Any(), gomock.Any(), gomock.Any()).Return(&ec2.DescribeInstancesOutput{
		Reservations: []types.Reservation{{Instances: []types.Instance{{
			InstanceId: aws.String("i-0123456789abcdef0"), ImageId: aws.String("ami-0123456789abcdef0"),
			Tags: []types.Tag{{Key: aws.String("aws:autoscaling:groupName"), Value: aws.String("web")}},
		}}}},
	}, nil).AnyTimes()
	api.EXPECT().DescribeVolumes(gomock.Any(), gomock.Any(), gomock.Any()).Return(&ec2.DescribeVolumesOutput{}, nil).AnyTimes()
	api.EXPECT().DescribeAddresses(gomock.Any(), gomock.Any(), gomock.Any()).Return(&ec2.DescribeAddressesOutput{}, nil).AnyTimes()
	api.EXPECT().DescribeInstanceAttribute(gomock.Any(), gomock.Any(), gomock.Any()).Return(&ec2.DescribeInstanceAttributeOutput{}, nil).AnyTimes()
	// No RunInstances or TerminateInstances expectation: any such call fails the test.
	_, err := lifecycle.NewSurge(api, lifecycle.Target{}).Replace(t.Context(), "i-0123456789abcdef0")
	if !errors.Is(err, ec2ops.ErrUnsupported) {
		t.Fatalf("err = %v", err)
	}
}
