package cloudsim

// The clients of the services beyond EC2. Each is a thin view of the Sim:
// its methods (added in files of their own, e.g. ssm_commands.go,
// cloudwatch_alarms.go) have the exact signatures of the aws-sdk-go-v2
// client's and run inside s.call with the service's descriptor below, so
// accounting ("ssm:SendCommand"), the published buckets and the seeded faults
// apply to them as they do to EC2.

var (
	svcSSM         = service{prefix: "ssm", id: "SSM", throttleCode: "ThrottlingException"}
	svcCloudWatch  = service{prefix: "cloudwatch", id: "CloudWatch", throttleCode: "Throttling"}
	svcELBv2       = service{prefix: "elasticloadbalancing", id: "Elastic Load Balancing v2", throttleCode: "Throttling"}
	svcAutoScaling = service{prefix: "autoscaling", id: "Auto Scaling", throttleCode: "Throttling"}
)

// SSM is a simulated Systems Manager client. Every client of one Sim shares
// its state.
type SSM struct{ sim *Sim }

// SSM returns a Systems Manager client of s.
func (s *Sim) SSM() *SSM { return &SSM{sim: s} }

// CloudWatch is a simulated CloudWatch client.
type CloudWatch struct{ sim *Sim }

// CloudWatch returns a CloudWatch client of s.
func (s *Sim) CloudWatch() *CloudWatch { return &CloudWatch{sim: s} }

// ELBv2 is a simulated Elastic Load Balancing v2 client.
type ELBv2 struct{ sim *Sim }

// ELBv2 returns an Elastic Load Balancing v2 client of s.
func (s *Sim) ELBv2() *ELBv2 { return &ELBv2{sim: s} }

// AutoScaling is a simulated Auto Scaling client.
type AutoScaling struct{ sim *Sim }

// AutoScaling returns an Auto Scaling client of s.
func (s *Sim) AutoScaling() *AutoScaling { return &AutoScaling{sim: s} }
