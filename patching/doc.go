// Package patching reaches instances through Systems Manager Run Command,
// never SSH: a CommandRunner that sends commands at fleet scale (batches of
// at most 50 instance IDs, rate controls, per-instance results, cancellation)
// and wave-based patching with AWS-RunPatchBaseline, a canary, health gates
// between waves and a compliance report.
package patching
