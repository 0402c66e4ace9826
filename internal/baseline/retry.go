package baseline

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
)

// Retrier runs calls the way the SDK's retry middleware does with the
// standard retryer: an attempt token per attempt, a retry token (quota) per
// retry, the retryer's own backoff between attempts.
type Retrier struct {
	r *retry.Standard
}

// NewRetrier returns a Retrier over retry.NewStandard() with the SDK's
// defaults. One Retrier models one SDK client (the quota is per client).
func NewRetrier() *Retrier { return &Retrier{r: retry.NewStandard()} }

// Do calls f until it succeeds, fails with a non-retryable error, runs out of
// attempts, or the retry quota is exhausted; it returns the last error.
func Do[T any](ctx context.Context, rt *Retrier, f func(context.Context) (T, error)) (T, error) {
	releaseRetry := func(error) error { return nil }
	for attempt := 1; ; attempt++ {
		releaseAttempt, err := rt.r.GetAttemptToken(ctx)
		if err != nil {
			var zero T
			return zero, err
		}
		if attempt > 1 {
			releaseAttempt = func(error) error { return nil }
		}
		out, err := f(ctx)
		releaseAttempt(err)
		releaseRetry(err)
		if err == nil {
			return out, nil
		}
		if attempt >= rt.r.MaxAttempts() || !rt.r.IsErrorRetryable(err) {
			return out, err
		}
		rel, qerr := rt.r.GetRetryToken(ctx, err)
		if qerr != nil {
			return out, err // quota exhausted: the SDK gives up with the last error
		}
		releaseRetry = rel
		d, derr := rt.r.RetryDelay(attempt, err)
		if derr != nil {
			return out, err
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return out, ctx.Err()
		case <-t.C:
		}
	}
}
