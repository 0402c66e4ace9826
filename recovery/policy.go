package recovery

import (
	"github.com/ec2ops/ec2ops"
)

// Policy returns the least-privilege IAM policy of the Installer: describe
// the fleet and its types, list alarms, and create, update, tag and delete
// only the alarms under its prefix. CloudWatch creates the service-linked
// role AWSServiceRoleForCloudWatchEvents the first time an alarm with an
// EC2 action is created, which needs iam:CreateServiceLinkedRole (source:
// PutMetricAlarm API reference); the statement is limited to that role.
func (i *Installer) Policy() ec2ops.Policy {
	alarms := "arn:aws:cloudwatch:*:*:alarm:" + i.opts.Prefix + "*"
	return ec2ops.NewPolicy(
		ec2ops.Statement{Sid: "DescribeFleet", Action: []string{"ec2:DescribeInstances", "ec2:DescribeInstanceTypes"}, Resource: []string{"*"}},
		ec2ops.Statement{Sid: "ListAlarms", Action: []string{"cloudwatch:DescribeAlarms"}, Resource: []string{"*"}},
		ec2ops.Statement{Sid: "ManageRecoveryAlarms", Action: []string{"cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:TagResource"},
			Resource: []string{alarms}},
		ec2ops.Statement{Sid: "AlarmActionsRole", Action: []string{"iam:CreateServiceLinkedRole"},
			Resource:  []string{"arn:aws:iam::*:role/aws-service-role/events.amazonaws.com/AWSServiceRoleForCloudWatchEvents*"},
			Condition: map[string]map[string]string{"StringEquals": {"iam:AWSServiceName": "events.amazonaws.com"}}},
	)
}

// Policy returns the least-privilege IAM policy of AutoRecovery.
func (a *AutoRecovery) Policy() ec2ops.Policy {
	return ec2ops.NewPolicy(
		ec2ops.Statement{Sid: "DescribeFleet", Action: []string{"ec2:DescribeInstances", "ec2:DescribeInstanceTypes"}, Resource: []string{"*"}},
		ec2ops.Statement{Sid: "SetAutoRecovery", Action: []string{"ec2:ModifyInstanceMaintenanceOptions"}, Resource: []string{"arn:aws:ec2:*:*:instance/*"}},
	)
}

// Policy returns the least-privilege IAM policy of the Watchdog itself;
// merge the Replacer's policy (for example lifecycle's) into it.
func (w *Watchdog) Policy() ec2ops.Policy {
	return ec2ops.NewPolicy(
		ec2ops.Statement{Sid: "Watch", Action: []string{"ec2:DescribeInstances", "ec2:DescribeInstanceTypes", "ec2:DescribeInstanceStatus"}, Resource: []string{"*"}},
		ec2ops.Statement{Sid: "Remedy", Action: []string{"ec2:RebootInstances", "ec2:StopInstances", "ec2:StartInstances"}, Resource: []string{"arn:aws:ec2:*:*:instance/*"}},
	)
}

// Policy returns the least-privilege IAM policy of the Detector.
func (d *Detector) Policy() ec2ops.Policy {
	return ec2ops.NewPolicy(
		ec2ops.Statement{Sid: "DescribeFleet", Action: []string{"ec2:DescribeInstances", "ec2:DescribeInstanceTypes"}, Resource: []string{"*"}},
	)
}
