package cloudsim

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/ec2ops/ec2ops/internal/awserr"
)

// TestRunInstancesRequestBucket: RunInstances has a 5-token bucket that
// refills 2 a second; 20 concurrent calls in one instant get 5 through.
func TestRunInstancesRequestBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New()
		c := s.EC2()
		var mu sync.Mutex
		var ok, throttled int
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				_, err := c.RunInstances(context.Background(), runInput(1))
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case awserr.IsThrottle(err):
					throttled++
				default:
					t.Errorf("unexpected error %v", err)
				}
			})
		}
		wg.Wait()
		if ok != 5 || throttled != 15 {
			t.Fatalf("ok %d throttled %d, want 5 and 15", ok, throttled)
		}
		if got := s.Calls()["ec2:RunInstances"]; got != 20 {
			t.Fatalf("calls = %d, want 20 (throttled calls count)", got)
		}
		if got := s.Throttled()["ec2:RunInstances"]; got != 15 {
			t.Fatalf("throttled = %d, want 15", got)
		}
		if s.TotalCalls() != 20 || s.Errors()["RequestLimitExceeded"] != 15 {
			t.Fatalf("total %d errors %v", s.TotalCalls(), s.Errors())
		}
		time.Sleep(time.Second) // two tokens
		ok = 0
		for range 3 {
			if _, err := c.RunInstances(context.Background(), runInput(1)); err == nil {
				ok++
			}
		}
		if ok != 2 {
			t.Fatalf("%d calls succeeded a second later, want 2", ok)
		}
		// Other actions have their own buckets.
		_, err := c.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{})
		mustOK(t, err)
	})
}

// TestRunInstancesResourceBucket: 1000 instance tokens refilled at 2/s.
func TestRunInstancesResourceBucket(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := New()
		c := s.EC2()
		launch(t, c, runInput(1000))
		_, err := c.RunInstances(context.Background(), runInput(10))
		wantCode(t, err, "RequestLimitExceeded")
		time.Sleep(4 * time.Second) // 8 tokens
		_, err = c.RunInstances(context.Background(), runInput(10))
		wantCode(t, err, "RequestLimitExceeded")
		time.Sleep(time.Second) // 10 tokens
		launch(t, c, runInput(10))
		if n := len(s.Instances()); n != 1010 {
			t.Fatalf("%d instances, want 1010", n)
		}
		// TerminateInstances: 1000 tokens refilled at 20/s.
		ids := make([]string, 0, 1010)
		for _, v := range s.Instances() {
			ids = append(ids, v.ID)
		}
		_, err = c.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: ids[:1000]})
		mustOK(t, err)
		_, err = c.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: ids[1000:]})
		wantCode(t, err, "RequestLimitExceeded")
		time.Sleep(500 * time.Millisecond)
		_, err = c.TerminateInstances(context.Background(), &ec2.TerminateInstancesInput{InstanceIds: ids[1000:]})
		mustOK(t, err)
	})
}

func TestDisableThrottling(t *testing.T) {
	s := New(noThrottle)
	c := s.EC2()
	for range 50 {
		launch(t, c, runInput(100))
	}
	if len(s.Throttled()) != 0 {
		t.Fatalf("throttled %v with throttling disabled", s.Throttled())
	}
}

// TestErrorShapes: errors look like an SDK client's and classify in awserr.
func TestErrorShapes(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		opts   func(*Options)
		call   func(c *EC2) error
		code   string
		class  awserr.Class
		status int
		fault  smithy.ErrorFault
	}{
		{"throttle fault", func(o *Options) { o.Faults.ThrottleRate = 1 },
			func(c *EC2) error { _, err := c.DescribeInstances(ctx, nil); return err },
			"RequestLimitExceeded", awserr.Throttle, 503, smithy.FaultServer},
		{"server error", func(o *Options) { o.Faults.ServerErrorRate = 1 },
			func(c *EC2) error { _, err := c.DescribeInstanceStatus(ctx, nil); return err },
			"InternalError", awserr.Transient, 500, smithy.FaultServer},
		{"capacity", func(o *Options) { o.Faults.CapacityRate = 1 },
			func(c *EC2) error { _, err := c.RunInstances(ctx, runInput(1)); return err },
			"InsufficientInstanceCapacity", awserr.Capacity, 500, smithy.FaultServer},
		{"not found", nil,
			func(c *EC2) error {
				_, err := c.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{"i-0123456789abcdef0"}})
				return err
			},
			"InvalidInstanceID.NotFound", awserr.NotFound, 400, smithy.FaultClient},
		{"malformed", nil,
			func(c *EC2) error {
				_, err := c.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: []string{"web-1"}})
				return err
			},
			"InvalidInstanceID.Malformed", awserr.Other, 400, smithy.FaultClient},
		{"dry run", nil,
			func(c *EC2) error {
				_, err := c.RunInstances(ctx, runInput(1, func(in *ec2.RunInstancesInput) { in.DryRun = aws.Bool(true) }))
				return err
			},
			"DryRunOperation", awserr.DryRun, 412, smithy.FaultClient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []func(*Options)
			if tt.opts != nil {
				opts = append(opts, tt.opts)
			}
			err := tt.call(New(opts...).EC2())
			wantCode(t, err, tt.code)
			if got := awserr.Classify(err); got != tt.class {
				t.Errorf("class = %v, want %v", got, tt.class)
			}
			var ae *smithy.GenericAPIError
			if !errors.As(err, &ae) || ae.ErrorFault() != tt.fault || ae.ErrorMessage() == "" {
				t.Errorf("GenericAPIError = %+v, want fault %v", ae, tt.fault)
			}
			var re *smithyhttp.ResponseError
			if !errors.As(err, &re) || re.HTTPStatusCode() != tt.status {
				t.Errorf("HTTP status: %v, want %d", err, tt.status)
			}
			var oe *smithy.OperationError
			if !errors.As(err, &oe) || oe.Service() != "EC2" || oe.Operation() == "" {
				t.Errorf("OperationError = %+v", oe)
			}
			var rid interface{ ServiceRequestID() string }
			if !errors.As(err, &rid) || rid.ServiceRequestID() == "" {
				t.Error("no request ID")
			}
		})
	}
}

func TestRandomFaultRates(t *testing.T) {
	s := New(noThrottle, func(o *Options) { o.Faults.ThrottleRate, o.Faults.ServerErrorRate = 0.2, 0.1 })
	c := s.EC2()
	var throttled, server int
	for range 2000 {
		_, err := c.DescribeInstances(context.Background(), nil)
		switch awserr.Classify(err) {
		case awserr.Throttle:
			throttled++
		case awserr.Transient:
			server++
		}
	}
	// Throttle first (20%), then 10% of the rest.
	if throttled < 320 || throttled > 480 || server < 110 || server > 250 {
		t.Fatalf("throttled %d, server errors %d of 2000", throttled, server)
	}
	if got := s.Throttled()["ec2:DescribeInstances"]; got != throttled {
		t.Fatalf("Throttled() = %d, want %d", got, throttled)
	}
}

func TestContextDone(t *testing.T) {
	s := New()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.EC2().RunInstances(ctx, runInput(1))
	if !errors.Is(err, context.Canceled) || awserr.Classify(err) != awserr.Canceled {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if s.TotalCalls() != 0 || len(s.Instances()) != 0 {
		t.Fatal("a call with a done context was counted or launched something")
	}
}

func TestCountersReset(t *testing.T) {
	s := New()
	c := s.EC2()
	_, _ = c.DescribeInstances(context.Background(), nil)
	_, _ = c.DescribeInstanceStatus(context.Background(), nil)
	_, _ = c.DescribeInstanceStatus(context.Background(), nil)
	if got := s.Calls(); got["ec2:DescribeInstances"] != 1 || got["ec2:DescribeInstanceStatus"] != 2 || s.TotalCalls() != 3 {
		t.Fatalf("calls %v total %d", got, s.TotalCalls())
	}
	got := s.Calls()
	got["ec2:DescribeInstances"] = 100 // a copy
	s.ResetCounters()
	if len(s.Calls()) != 0 || s.TotalCalls() != 0 || len(s.Throttled()) != 0 || len(s.Errors()) != 0 {
		t.Fatal("ResetCounters left counts")
	}
}
