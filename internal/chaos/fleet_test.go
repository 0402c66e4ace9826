package chaos

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/ec2ops/ec2ops/internal/cloudsim"
)

const (
	oldAMI = "ami-0aaaaaaaaaaaaaaa1"
	newAMI = "ami-0bbbbbbbbbbbbbbb2"
	// canaryUserData is base64 of "#!/bin/sh\nexport DB_PASSWORD=canary-7f3a9c\n".
	canaryUserData = "IyEvYmluL3NoCmV4cG9ydCBEQl9QQVNTV09SRD1jYW5hcnktN2YzYTljCg=="
	canary         = "canary-7f3a9c"
)

// launchHealthy launches n instances tagged tag=value (round robin over
// the AZs, user data carrying the canary) and waits until all are
// healthy, replacing any that booted impaired; the faults apply to these
// calls too, so they are retried.
func launchHealthy(t *testing.T, s *seedRun, n int, itype types.InstanceType, tags map[string]string) []string {
	t.Helper()
	sim := s.sim
	c := sim.EC2()
	ctx := context.Background()
	subnets := sim.Subnets()
	azs := []string{"us-east-1a", "us-east-1b", "us-east-1c"}
	seq := 0
	launch := func(i int) string {
		seq++
		var tl []types.Tag
		for k, v := range tags {
			tl = append(tl, types.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
		tl = append(tl, types.Tag{Key: aws.String("Name"), Value: aws.String(fmt.Sprintf("node-%d", seq))})
		in := &ec2.RunInstancesInput{
			ImageId: aws.String(oldAMI), InstanceType: itype,
			MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
			ClientToken: aws.String(fmt.Sprintf("setup-%d", seq)),
			SubnetId:    aws.String(subnets[azs[i%len(azs)]]),
			UserData:    aws.String(canaryUserData),
			BlockDeviceMappings: []types.BlockDeviceMapping{{DeviceName: aws.String("/dev/sdf"),
				Ebs: &types.EbsBlockDevice{VolumeSize: aws.Int32(20), VolumeType: types.VolumeTypeGp3, Encrypted: aws.Bool(true),
					KmsKeyId: aws.String("arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab")}}},
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: tl}},
		}
		var id string
		retry(t, "setup RunInstances", func() error {
			out, err := c.RunInstances(ctx, in)
			if err == nil {
				id = aws.ToString(out.Instances[0].InstanceId)
			}
			return err
		})
		return id
	}
	ids := make([]string, n)
	for i := range n {
		ids[i] = launch(i)
	}
	for round := 0; ; round++ {
		time.Sleep(5 * time.Minute)
		bad := 0
		for i, id := range ids {
			if iv, _ := sim.Instance(id); iv.Healthy {
				continue
			}
			bad++
			retry(t, "setup TerminateInstances", func() error {
				_, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{id}})
				return err
			})
			ids[i] = launch(i)
		}
		if bad == 0 {
			return ids
		}
		if round > 10 {
			t.Fatalf("setup: fleet not healthy after %d rounds", round)
		}
	}
}

// live reports whether an instance is neither terminated nor shutting down.
func live(v cloudsim.InstanceView) bool { return v.State != "terminated" && v.State != "shutting-down" }
