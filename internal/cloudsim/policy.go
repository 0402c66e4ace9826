package cloudsim

// IAM policy enforcement: a Sim can run under a policy, as a role would.
// Every call is checked against it (before the token buckets and the
// random faults, as AWS authorizes a request before it throttles it) and a
// call outside it fails with the code the service answers, naming the
// action: UnauthorizedOperation (EC2), AccessDeniedException (SSM),
// AccessDenied (CloudWatch, Elastic Load Balancing, Auto Scaling).
//
// Only actions are enforced: resource ARNs and conditions in the policy are
// not evaluated (the simulator has no account, no ARNs for most resources
// and no request context), so a test that passes here proves the action
// list, not the resource scoping.

// Authorizer is what a Sim enforces: ec2ops.Policy satisfies it (Allows
// takes an exact "service:Op" action).
type Authorizer interface {
	Allows(action string) bool
}

// policyState is the policy enforcement part of the Sim (guarded by Sim.mu).
type policyState struct {
	auth   Authorizer
	denied map[string]int
}

// EnforcePolicy makes every later call outside p fail with the service's
// authorization error (nil p: allow everything again). Denied calls are
// counted by Calls like any other call, and by Denied.
func (s *Sim) EnforcePolicy(p Authorizer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pol.auth = p
}

// Denied returns the number of calls refused by the enforced policy, by
// "service:Operation".
func (s *Sim) Denied() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.pol.denied))
	for k, v := range s.pol.denied {
		out[k] = v
	}
	return out
}

// authorize checks one call against the enforced policy (lock held).
func (s *Sim) authorize(svc service, op string) error {
	if s.pol.auth == nil {
		return nil
	}
	action := svc.prefix + ":" + op
	if s.pol.auth.Allows(action) {
		return nil
	}
	if s.pol.denied == nil {
		s.pol.denied = map[string]int{}
	}
	s.pol.denied[action]++
	const user = "arn:aws:sts::123456789012:assumed-role/ec2ops/session"
	switch svc.prefix {
	case "ec2":
		return apiError("UnauthorizedOperation", "You are not authorized to perform this operation. User: %s is not authorized to perform: %s", user, action)
	case "ssm":
		return apiError("AccessDeniedException", "User: %s is not authorized to perform: %s because no identity-based policy allows the %s action", user, action, action)
	}
	return apiError("AccessDenied", "User: %s is not authorized to perform: %s", user, action)
}
