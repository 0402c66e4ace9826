package cloudsim

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

// The SSM parameter model: the public parameters AWS publishes under
// /aws/service/ (for example
// /aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64,
// whose value is the newest Amazon Linux 2023 AMI ID of the Region), seeded
// by a test with PutParameter and read with GetParameter. Launch template
// versions whose ImageId is "resolve:ssm:NAME" resolve through them.

type parameter struct {
	name, value, dataType string
	version               int64
	modified              time.Time
}

// PutParameter creates or updates a String parameter (a new version each
// time). A value that looks like an AMI ID gets the data type
// aws:ec2:image, as AWS's public AMI parameters have. It is a test helper,
// not an API call.
func (s *Sim) PutParameter(name, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.advance()
	p := s.img.params[name]
	if p == nil {
		p = &parameter{name: name}
		s.img.params[name] = p
	}
	p.value, p.modified = value, now
	p.version++
	p.dataType = "text"
	if validID(value, "ami-") {
		p.dataType = "aws:ec2:image"
	}
}

// GetParameter returns a parameter by name (a "name:version" selector is
// accepted for the current version only); a missing one is
// ParameterNotFound.
func (c *SSM) GetParameter(ctx context.Context, params *ssm.GetParameterInput, optFns ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	if params == nil {
		params = &ssm.GetParameterInput{}
	}
	s := c.sim
	var out *ssm.GetParameterOutput
	err := s.call(ctx, svcSSM, "GetParameter", nil, func(now time.Time) error {
		name := aws.ToString(params.Name)
		if name == "" {
			return apiError("ValidationException", "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null")
		}
		base, sel, _ := strings.Cut(name, ":")
		p := s.img.params[base]
		if p == nil || (sel != "" && sel != strconv.FormatInt(p.version, 10)) {
			return apiError("ParameterNotFound", "Parameter %s not found.", name)
		}
		out = &ssm.GetParameterOutput{Parameter: &ssmtypes.Parameter{
			ARN:              ptr("arn:aws:ssm:" + s.opts.Region + "::parameter" + p.name),
			DataType:         ptr(p.dataType),
			LastModifiedDate: ptr(p.modified),
			Name:             ptr(p.name),
			Type:             ssmtypes.ParameterTypeString,
			Value:            ptr(p.value),
			Version:          p.version,
		}}
		if sel != "" {
			out.Parameter.Selector = ptr(":" + sel)
		}
		return nil
	})
	return out, err
}
