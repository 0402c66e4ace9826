// Package chaos is the reliability suite of ec2ops. It has no library code:
// its tests drive the public strategy APIs (ami's Baker and Retention,
// lifecycle's Rollout, recovery's Installer and Watchdog, patching's
// Patcher, opsworks' Configurator) on internal/cloudsim inside
// testing/synctest bubbles, with seeded faults and a cancellation at a
// random point followed by fresh runs that resume, and check the
// invariants of DESIGN.md at every state change:
//
//   - healthy capacity never under the floor;
//   - no orphaned instance, image, snapshot or builder;
//   - no duplicate launch and no wrong termination;
//   - no in-use image deregistered;
//   - recovery alarms converge to exactly the desired set.
//
// The same package checks least privilege (every strategy under its own
// Policy() with cloudsim's EnforcePolicy, then under its policy minus each
// action it uses), secrets (a canary in user data and sensitive command
// parameters never reaches a log line, an event or an error) and goroutine
// leaks (go.uber.org/goleak).
//
// `go test ./internal/chaos` runs the short form (20 seeds an operation);
// `make chaos` runs 200 seeds an operation and prints
//
//	CHAOS runs=... faults=... violations=...
//
// followed by a breakdown by operation and by fault kind.
package chaos
