// Package lifecycle replaces instances: it captures the launch spec of a
// running instance (everything needed to launch an equivalent one, with a
// drift hash that includes user data), replaces one instance through Replacer
// strategies (surge, root volume, data-volume handover, resize), and rolls a
// fleet with MaxUnavailable/MaxSurge, a canary and a journal that lets a
// cancelled run resume without a duplicate launch or a wrong termination.
// Instances owned by an Auto Scaling group are refused: use Instance Refresh.
package lifecycle
