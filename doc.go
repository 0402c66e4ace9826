// Package ec2ops is an embeddable library for operating Amazon EC2 fleets from
// code: replacing defective or outdated instances, keeping AMIs fresh,
// installing automatic recovery, patching and running commands through Systems
// Manager, and OpsWorks-style configuration management.
//
// # Package map
//
//   - ami: resolve the image to use, bake it (from an instance or from a base
//     image plus layers), distribute, retire it with in-use protection, and
//     decide how much to bake at all (the FullAMI vs OSOnly Balancer).
//   - lifecycle: capture an instance's launch spec, replace one instance by an
//     equivalent one (Replacer strategies), and roll a fleet with a journal.
//   - recovery: reconcile CloudWatch auto-recovery alarms, detect what AWS can
//     recover, and a Watchdog that escalates to replacement.
//   - patching: a CommandRunner over SSM Run Command at fleet scale, and
//     wave-based patching.
//   - opsworks: configuration management after OpsWorks (Chef, Puppet, Ansible
//     through SSM), a stack importer and lifecycle events.
//   - internal/...: error classification, client-side pacing, batched polling
//     and the deterministic simulator used by tests, benchmarks and examples.
//
// # How strategies compose
//
// Every strategy depends on narrow interfaces whose methods have the exact
// signatures of the aws-sdk-go-v2 clients, so a *ec2.Client, a generated mock
// or the simulator can stand behind it. A strategy that needs another one
// declares the small interface it consumes (recovery's Watchdog needs
// "something that replaces an instance", which lifecycle's Replacer
// satisfies); imports flow one way and no package knows everything.
//
// This package holds the small vocabulary they share: Event and Observer for
// the progress of long operations, Plan and Step for dry runs, and the errors
// every strategy may return.
package ec2ops
