// Package recovery makes sure a failed instance comes back: it detects which
// instances AWS can recover, reconciles CloudWatch alarms with the EC2
// recover action to exactly the desired set, sets simplified automatic
// recovery, and runs a Watchdog that escalates (reboot, stop/start, replace)
// for instances AWS cannot recover, never acting on more than a configured
// share of the fleet at once.
package recovery
