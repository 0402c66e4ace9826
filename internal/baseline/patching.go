package baseline

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"

	"github.com/ec2ops/ec2ops/internal/awserr"
)

// SSM is what the baseline patching calls.
type SSM interface {
	SendCommand(ctx context.Context, params *ssm.SendCommandInput, optFns ...func(*ssm.Options)) (*ssm.SendCommandOutput, error)
	GetCommandInvocation(ctx context.Context, params *ssm.GetCommandInvocationInput, optFns ...func(*ssm.Options)) (*ssm.GetCommandInvocationOutput, error)
}

var _ SSM = (*ssm.Client)(nil)

// retryingSSM puts the standard retryer in front of GetCommandInvocation,
// so the SDK waiter's polls are retried as they are on a real client.
type retryingSSM struct {
	SSM
	rt *Retrier
}

func (c retryingSSM) GetCommandInvocation(ctx context.Context, in *ssm.GetCommandInvocationInput, o ...func(*ssm.Options)) (*ssm.GetCommandInvocationOutput, error) {
	return Do(ctx, c.rt, func(ctx context.Context) (*ssm.GetCommandInvocationOutput, error) {
		return c.SSM.GetCommandInvocation(ctx, in, o...)
	})
}

// PatchResult is what the baseline patching achieved.
type PatchResult struct {
	CommandIDs []string
	Succeeded  int
	Failed     map[string]error // instance -> why it did not succeed
	Surfaced   int              // failures caused by a throttling error
	Makespan   time.Duration
}

// Patch runs document with params on ids the way a user writes it with the
// SDK: one SendCommand per 50 instance IDs (the API's limit), each with
// the same MaxConcurrency and MaxErrors, all sent at once; then one SDK
// CommandExecuted waiter per instance (ssm.NewCommandExecutedWaiter: 5 s
// minimum and 120 s maximum delay, one GetCommandInvocation per poll, the
// waiter's retryable states), every call through the standard retryer. A
// waiter that ends in a failure state, or an error, counts the instance as
// failed. InvocationDoesNotExist right after SendCommand is retried by the
// waiter itself, as the SDK does.
func Patch(ctx context.Context, c SSM, ids []string, document string, params map[string][]string, maxConcurrency, maxErrors string, limit time.Duration) PatchResult {
	rt := NewRetrier()
	rc := retryingSSM{SSM: c, rt: rt}
	res := PatchResult{Failed: map[string]error{}}
	start := time.Now()
	type sent struct {
		id  string
		ids []string
	}
	var cmds []sent
	for chunk := range slices.Chunk(ids, 50) {
		out, err := Do(ctx, rt, func(ctx context.Context) (*ssm.SendCommandOutput, error) {
			return c.SendCommand(ctx, &ssm.SendCommandInput{DocumentName: aws.String(document), InstanceIds: chunk,
				Parameters: params, MaxConcurrency: aws.String(maxConcurrency), MaxErrors: aws.String(maxErrors)})
		})
		if err != nil {
			for _, id := range chunk {
				res.Failed[id] = fmt.Errorf("send command: %w", err)
				if awserr.IsThrottle(err) {
					res.Surfaced++
				}
			}
			continue
		}
		cmds = append(cmds, sent{aws.ToString(out.Command.CommandId), chunk})
		res.CommandIDs = append(res.CommandIDs, aws.ToString(out.Command.CommandId))
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, cmd := range cmds {
		for _, id := range cmd.ids {
			wg.Go(func() {
				w := ssm.NewCommandExecutedWaiter(rc)
				err := w.Wait(ctx, &ssm.GetCommandInvocationInput{CommandId: aws.String(cmd.id), InstanceId: aws.String(id)}, limit)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					res.Failed[id] = err
					if awserr.IsThrottle(err) {
						res.Surfaced++
					}
					return
				}
				res.Succeeded++
			})
		}
	}
	wg.Wait()
	res.Makespan = time.Since(start)
	return res
}
