package opsworks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ec2ops/ec2ops/lifecycle"
	"github.com/ec2ops/ec2ops/patching"
)

// SetupFunc returns the function to run when an instance joins layer
// (OpsWorks: Setup, then Deploy, once it has booted): it runs the layer's
// Setup and then Deploy run lists on instanceID, waiting up to
// Options.AgentWait for its SSM agent. Events without a run list are
// skipped.
func (c *Configurator) SetupFunc(stack *Stack, layer string) func(ctx context.Context, instanceID string) error {
	return func(ctx context.Context, id string) error {
		for _, ev := range []Event{Setup, Deploy} {
			if err := c.runOn(ctx, stack, layer, ev, id); err != nil {
				return err
			}
		}
		return nil
	}
}

// ShutdownFunc returns the function to run before an instance of layer is
// terminated: the layer's Shutdown run list on it.
func (c *Configurator) ShutdownFunc(stack *Stack, layer string) func(ctx context.Context, instanceID string) error {
	return func(ctx context.Context, id string) error { return c.runOn(ctx, stack, layer, Shutdown, id) }
}

// ConfigureFunc returns the function to run when the stack's membership
// changed (OpsWorks ran Configure on every online instance of the stack
// when one entered or left the online state): it runs Configure on every
// running instance the layers select, except changedID when leaving is
// true (an instance about to be terminated), and including changedID when
// leaving is false (a new instance that may not yet be tagged).
func (c *Configurator) ConfigureFunc(stack *Stack, layer string, leaving bool) func(ctx context.Context, changedID string) error {
	return func(ctx context.Context, changedID string) error {
		if err := stack.validate(); err != nil {
			return err
		}
		var ids []string
		for _, l := range stack.Layers {
			if len(l.RunLists[Configure]) == 0 {
				continue
			}
			m, err := c.resolve(ctx, l.Selector)
			if err != nil {
				return fmt.Errorf("configure after membership change of %s: %w", changedID, err)
			}
			for id := range m {
				if !(leaving && id == changedID) {
					ids = append(ids, id)
				}
			}
		}
		if !leaving && !slices.Contains(ids, changedID) {
			l, ok := stack.layer(layer)
			if ok && len(l.RunLists[Configure]) > 0 {
				if err := c.runOn(ctx, stack, layer, Configure, changedID); err != nil {
					return err
				}
			}
		}
		if len(ids) == 0 {
			return nil
		}
		slices.Sort(ids)
		_, err := c.Run(ctx, stack, Deployment{Event: Configure, InstanceIDs: ids,
			Comment: fmt.Sprintf("ec2ops opsworks %s Configure (%s)", stack.Name, changedID)})
		return err
	}
}

// runOn runs one event of layer on one instance, waiting for its agent.
func (c *Configurator) runOn(ctx context.Context, stack *Stack, layer string, ev Event, id string) error {
	l, ok := stack.layer(layer)
	if !ok {
		return fmt.Errorf("opsworks: stack %s has no layer %q", stack.Name, layer)
	}
	if len(l.RunLists[ev]) == 0 {
		return nil
	}
	d := Deployment{Event: ev, Layers: []string{layer}, InstanceIDs: []string{id}, Explicit: true,
		Comment: fmt.Sprintf("ec2ops opsworks %s %s %s", stack.Name, layer, ev)}
	deadline := time.Now().Add(c.opts.AgentWait)
	delay := 10 * time.Second
	for {
		_, err := c.Run(ctx, stack, d)
		var derr *DeployError
		var uerr *patching.UnmanagedError
		if err == nil || !errors.As(err, &derr) || !errors.As(err, &uerr) || time.Now().Add(delay).After(deadline) {
			return err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, time.Minute)
	}
}

// LifecycleHooks plugs layer's lifecycle events into lifecycle's
// replacements: BeforeInService runs Setup and Deploy on the replacement
// (once it passed its health checks) and then Configure on the stack;
// BeforeTerminate runs Shutdown on the old instance and then Configure on
// the others. An error fails the replacement, which lifecycle rolls back.
func (c *Configurator) LifecycleHooks(stack *Stack, layer string) lifecycle.Hooks {
	setup, shutdown := c.SetupFunc(stack, layer), c.ShutdownFunc(stack, layer)
	joined, left := c.ConfigureFunc(stack, layer, false), c.ConfigureFunc(stack, layer, true)
	return lifecycle.Hooks{
		BeforeInService: func(ctx context.Context, newID string) error {
			if err := setup(ctx, newID); err != nil {
				return err
			}
			return joined(ctx, newID)
		},
		BeforeTerminate: func(ctx context.Context, oldID string) error {
			if err := shutdown(ctx, oldID); err != nil {
				return err
			}
			return left(ctx, oldID)
		},
	}
}
