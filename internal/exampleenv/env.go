// Package exampleenv is the plumbing the programs under examples/ share:
// the -plan, -aws, -region, -endpoint and -yes flags, the clients they
// select (the embedded simulator by default, a moto_server or any
// endpoint with static test credentials, or real AWS through the default
// credential chain), time compression for the simulator, the confirmation
// prompt before mutating steps, and progress printing.
//
// It is internal: programs that embed ec2ops build their clients with
// config.LoadDefaultConfig and pass them to the strategies directly.
package exampleenv

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwschemas "github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go/transport/http/protocol/awsquery"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/ami"
	"github.com/ec2ops/ec2ops/internal/cloudsim"
	"github.com/ec2ops/ec2ops/internal/ratelimit"
	"github.com/ec2ops/ec2ops/lifecycle"
	"github.com/ec2ops/ec2ops/opsworks"
	"github.com/ec2ops/ec2ops/patching"
	"github.com/ec2ops/ec2ops/recovery"
)

// EC2 is every EC2 method the examples hand to a strategy; *ec2.Client and
// the simulator's client both have it.
type EC2 interface {
	lifecycle.EC2API
	ami.BakeAPI
	ami.RetentionAPI
	recovery.WatchdogAPI
	patching.EC2API
	opsworks.EC2API
}

// SSM is what the Runner, Patcher and Configurator call on Systems Manager.
type SSM interface {
	patching.SSMAPI
}

// CloudWatch is what the recovery Installer calls.
type CloudWatch interface {
	recovery.AlarmAPI
}

// AutoScaling is what Retention reads to protect images in use.
type AutoScaling interface {
	ami.AutoScalingAPI
}

var (
	_ EC2         = (*ec2.Client)(nil)
	_ EC2         = (*cloudsim.EC2)(nil)
	_ SSM         = (*ssm.Client)(nil)
	_ SSM         = (*cloudsim.SSM)(nil)
	_ CloudWatch  = (*cloudwatch.Client)(nil)
	_ CloudWatch  = (*cloudsim.CloudWatch)(nil)
	_ AutoScaling = (*autoscaling.Client)(nil)
	_ AutoScaling = (*cloudsim.AutoScaling)(nil)
)

// Flags are the command-line switches every example shares.
type Flags struct {
	Plan      bool    // print the plan, change nothing
	AWS       bool    // real AWS through the default credential chain
	Region    string  // required with AWS
	Endpoint  string  // an endpoint such as a moto_server, static test credentials
	Yes       bool    // do not ask before mutating steps
	Seed      int64   // simulator seed
	TimeScale float64 // simulator durations are multiplied by this
}

// Register declares the shared flags on fs. defaultScale is the
// simulator's default time compression for this program.
func Register(fs *flag.FlagSet, defaultScale float64) *Flags {
	f := &Flags{}
	fs.BoolVar(&f.Plan, "plan", false, "print the plan and change nothing")
	fs.BoolVar(&f.AWS, "aws", false, "run against real AWS (default credential chain; -region required)")
	fs.StringVar(&f.Region, "region", "", "AWS Region (required with -aws; default us-east-1 with -endpoint)")
	fs.StringVar(&f.Endpoint, "endpoint", "", "endpoint URL, e.g. a moto_server at http://127.0.0.1:5000 (static test credentials)")
	fs.BoolVar(&f.Yes, "yes", false, "with -aws: do not ask for confirmation before mutating steps")
	fs.Int64Var(&f.Seed, "seed", 42, "simulator seed")
	fs.Float64Var(&f.TimeScale, "timescale", defaultScale, "simulator only: simulated durations are multiplied by this")
	return f
}

// Env is the environment one example runs in.
type Env struct {
	// Sim is the embedded simulator; nil with -aws or -endpoint.
	Sim *cloudsim.Sim
	// Config is the AWS configuration with -aws or -endpoint.
	Config aws.Config
	Region string
	// Scale is the time compression: Flags.TimeScale on the simulator, 1
	// otherwise.
	Scale  float64
	Flags  Flags
	In     io.Reader
	Out    io.Writer
	start  time.Time
	ec2Lim *ratelimit.Limiter
	ssmLim *ratelimit.Limiter
	in     *bufio.Reader
}

// ErrDeclined is returned when the user answers no at the confirmation
// prompt.
var ErrDeclined = errors.New("declined: nothing changed")

// New returns the Env the flags select. simOpts adjust the simulator.
// Create it inside the synctest bubble that uses it.
func New(ctx context.Context, f Flags, in io.Reader, out io.Writer, simOpts ...func(*cloudsim.Options)) (*Env, error) {
	e := &Env{Flags: f, In: in, Out: out, start: time.Now(), Scale: 1, Region: f.Region}
	switch {
	case f.AWS && f.Endpoint != "":
		return nil, ec2ops.InvalidInput("-endpoint", f.Endpoint, "cannot be combined with -aws", "use -aws for AWS, -endpoint for moto or another local endpoint")
	case f.AWS:
		if f.Region == "" {
			return nil, ec2ops.InvalidInput("-region", "", "is required with -aws", "name the Region of the fleet, e.g. -region eu-west-1")
		}
		cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(f.Region))
		if err != nil {
			return nil, fmt.Errorf("load AWS configuration: %w", err)
		}
		e.Config = cfg
	case f.Endpoint != "":
		if e.Region == "" {
			e.Region = "us-east-1"
		}
		e.Config = aws.Config{
			Region:           e.Region,
			Credentials:      credentials.NewStaticCredentialsProvider("testing", "testing", ""),
			BaseEndpoint:     aws.String(f.Endpoint),
			RetryMaxAttempts: 1,
		}
	default:
		if f.TimeScale <= 0 {
			return nil, ec2ops.InvalidInput("-timescale", fmt.Sprint(f.TimeScale), "must be above 0", "use 1 for real time, 0.01 to run 100 times faster")
		}
		e.Scale = f.TimeScale
		e.Region = "us-east-1"
		opts := append([]func(*cloudsim.Options){func(o *cloudsim.Options) {
			o.Seed = f.Seed
			o.TimeScale = f.TimeScale
		}}, simOpts...)
		e.Sim = cloudsim.New(opts...)
	}
	e.ec2Lim = ratelimit.New(ratelimit.EC2().Compressed(e.Scale), func(o *ratelimit.Options) { o.Share = 0.5 })
	e.ssmLim = ratelimit.New(ratelimit.SSM().Compressed(e.Scale), func(o *ratelimit.Options) { o.Share = 0.5 })
	return e, nil
}

// Simulated reports whether the example runs on the embedded simulator.
func (e *Env) Simulated() bool { return e.Sim != nil }

// Target names where the example runs, for its first line.
func (e *Env) Target() string {
	switch {
	case e.Sim != nil:
		return fmt.Sprintf("the embedded simulator (%s, simulated time %.0fx faster)", e.Region, 1/e.Scale)
	case e.Flags.Endpoint != "":
		return fmt.Sprintf("%s (%s, static test credentials)", e.Flags.Endpoint, e.Region)
	default:
		return "AWS " + e.Region
	}
}

// EC2 returns the EC2 client.
func (e *Env) EC2() EC2 {
	if e.Sim != nil {
		return e.Sim.EC2()
	}
	return ec2.NewFromConfig(e.Config)
}

// SSM returns the Systems Manager client.
func (e *Env) SSM() SSM {
	if e.Sim != nil {
		return e.Sim.SSM()
	}
	return ssm.NewFromConfig(e.Config)
}

// CloudWatch returns the CloudWatch client. Against an -endpoint it speaks
// the AWS query protocol, which moto understands (the SDK's default,
// rpcv2-CBOR, it does not).
func (e *Env) CloudWatch() CloudWatch {
	if e.Sim != nil {
		return e.Sim.CloudWatch()
	}
	return cloudwatch.NewFromConfig(e.Config, func(o *cloudwatch.Options) {
		if e.Flags.Endpoint != "" {
			o.Protocol = awsquery.New(cwschemas.GraniteServiceVersion20100801)
		}
	})
}

// AutoScaling returns the Auto Scaling client.
func (e *Env) AutoScaling() AutoScaling {
	if e.Sim != nil {
		return e.Sim.AutoScaling()
	}
	return autoscaling.NewFromConfig(e.Config)
}

// EC2Limiter paces EC2 calls at half the account's published buckets,
// refilling 1/Scale times faster on a compressed simulator. Share it
// between strategies.
func (e *Env) EC2Limiter() *ratelimit.Limiter { return e.ec2Lim }

// SSMLimiter paces Systems Manager calls likewise.
func (e *Env) SSMLimiter() *ratelimit.Limiter { return e.ssmLim }

// D scales a duration by the time compression.
func (e *Env) D(d time.Duration) time.Duration { return time.Duration(float64(d) * e.Scale) }

// Elapsed is the time since New, in simulated time on the simulator.
func (e *Env) Elapsed() time.Duration {
	return time.Duration(float64(time.Since(e.start)) / e.Scale).Round(time.Second)
}

// Runner returns a patching.Runner on SSM paced by SSMLimiter, polling at
// the library's defaults scaled by the time compression.
func (e *Env) Runner(obs ec2ops.Observer) *patching.Runner {
	return patching.NewRunner(e.SSM(), e.RunnerOptions(obs))
}

// RunnerOptions are the options Runner uses, for strategies that build
// their own (Patcher, Configurator).
func (e *Env) RunnerOptions(obs ec2ops.Observer) func(*patching.RunnerOptions) {
	return func(o *patching.RunnerOptions) {
		o.Limiter = e.ssmLim
		o.Observer = obs
		o.PollInterval, o.MaxPollInterval = e.D(5*time.Second), e.D(30*time.Second)
		o.ResultsInterval = e.D(10 * time.Second)
		o.CancelTimeout = max(e.D(30*time.Second), time.Second)
	}
}

// Confirm asks before a mutating step. On the simulator and a local
// endpoint, and with -yes, it does not ask. With -aws it prints the plan and
// reads one line from In: "y" or "yes" goes on, anything else is
// ErrDeclined.
func (e *Env) Confirm(p ec2ops.Plan) error {
	if !e.Flags.AWS || e.Flags.Yes {
		return nil
	}
	fmt.Fprint(e.Out, p.String())
	fmt.Fprintf(e.Out, "Apply these %d step(s) in AWS %s? [y/N] ", len(p.Steps), e.Region)
	if e.in == nil {
		e.in = bufio.NewReader(e.In)
	}
	line, err := e.in.ReadString('\n')
	if err != nil && line == "" {
		return ErrDeclined
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return ErrDeclined
}

// TagsFlag is a repeatable -tag KEY=VALUE flag.
type TagsFlag map[string]string

func (t TagsFlag) String() string {
	var parts []string
	for k, v := range t {
		parts = append(parts, k+"="+v)
	}
	return strings.Join(parts, ",")
}

// Set parses one KEY=VALUE.
func (t TagsFlag) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want KEY=VALUE, got %q", s)
	}
	t[k] = v
	return nil
}

// Main runs an example's body with a context cancelled on interrupt, and
// exits with status 1 (printing the error) when it fails, 2 on bad flags.
func Main(name string, body func(ctx context.Context) error) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := body(ctx)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		if errors.Is(err, ec2ops.ErrInvalidInput) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// PrintPlan writes a plan, at most limit steps of it (0: all), each with
// at most three resources.
func PrintPlan(w io.Writer, p ec2ops.Plan, limit int) {
	short := ec2ops.Plan{Operation: p.Operation}
	for i, st := range p.Steps {
		if limit > 0 && i == limit {
			break
		}
		if n := len(st.Resources); n > 3 {
			st.Resources = append(append([]string(nil), st.Resources[:3]...), fmt.Sprintf("and %d more", n-3))
		}
		short.Steps = append(short.Steps, st)
	}
	out := short.String()
	out = strings.Replace(out, fmt.Sprintf("%d step(s)", len(short.Steps)), fmt.Sprintf("%d step(s)", len(p.Steps)), 1)
	fmt.Fprint(w, out)
	if len(short.Steps) < len(p.Steps) {
		fmt.Fprintf(w, "     ... %d more step(s); actions: %s\n", len(p.Steps)-len(short.Steps), strings.Join(p.Actions(), ", "))
	}
}
