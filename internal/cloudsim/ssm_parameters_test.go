package cloudsim

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
)

func TestGetParameterPublicAMI(t *testing.T) {
	s := New()
	ctx := context.Background()
	const name = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"
	_, err := s.SSM().GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	wantCode(t, err, "ParameterNotFound")
	s.PutParameter(name, "ami-0123456789abcdef0")
	s.PutParameter(name, "ami-0fedcba9876543210")
	out, err := s.SSM().GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name)})
	mustOK(t, err)
	if p := out.Parameter; aws.ToString(p.Value) != "ami-0fedcba9876543210" || p.Version != 2 || aws.ToString(p.DataType) != "aws:ec2:image" {
		t.Errorf("parameter: %+v", p)
	}
	_, err = s.SSM().GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(name + ":1")})
	wantCode(t, err, "ParameterNotFound")
	if s.Calls()["ssm:GetParameter"] != 3 {
		t.Errorf("calls: %v", s.Calls())
	}
}
