package opsworks

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/internal/awsid"
)

// The JSON the AWS CLI printed for the OpsWorks Stacks API (aws opsworks
// describe-stacks, describe-layers, describe-apps, describe-instances),
// from the OpsWorks Stacks API reference (data types Stack, Layer, App,
// Instance, Source, Recipes, StackConfigurationManager, ChefConfiguration,
// LifecycleEventConfiguration). The service was removed from the SDKs, so
// these shapes are written here; only the fields the importer reads or
// reports are declared.

type owSource struct {
	Type     string `json:"Type"` // git | svn | archive | s3
	URL      string `json:"Url"`
	Username string `json:"Username"`
	Password string `json:"Password"` // "*****FILTERED*****" in responses
	SSHKey   string `json:"SshKey"`   // "*****FILTERED*****" in responses
	Revision string `json:"Revision"`
}

type owRecipes struct {
	Setup     []string `json:"Setup"`
	Configure []string `json:"Configure"`
	Deploy    []string `json:"Deploy"`
	Undeploy  []string `json:"Undeploy"`
	Shutdown  []string `json:"Shutdown"`
}

func (r *owRecipes) byEvent() map[Event][]string {
	if r == nil {
		return nil
	}
	return map[Event][]string{Setup: r.Setup, Configure: r.Configure, Deploy: r.Deploy, Undeploy: r.Undeploy, Shutdown: r.Shutdown}
}

type owStack struct {
	StackID               string `json:"StackId"`
	Name                  string `json:"Name"`
	Region                string `json:"Region"`
	CustomJSON            string `json:"CustomJson"`
	UseCustomCookbooks    bool   `json:"UseCustomCookbooks"`
	CustomCookbooksSource *owSource
	ConfigurationManager  *struct {
		Name    string `json:"Name"`
		Version string `json:"Version"`
	} `json:"ConfigurationManager"`
	ChefConfiguration *struct {
		ManageBerkshelf  bool   `json:"ManageBerkshelf"`
		BerkshelfVersion string `json:"BerkshelfVersion"`
	} `json:"ChefConfiguration"`
	DefaultOs string `json:"DefaultOs"`
}

type owLayer struct {
	StackID                     string     `json:"StackId"`
	LayerID                     string     `json:"LayerId"`
	Type                        string     `json:"Type"`
	Name                        string     `json:"Name"`
	Shortname                   string     `json:"Shortname"`
	CustomJSON                  string     `json:"CustomJson"`
	DefaultRecipes              *owRecipes `json:"DefaultRecipes"`
	CustomRecipes               *owRecipes `json:"CustomRecipes"`
	Packages                    []string   `json:"Packages"`
	VolumeConfigurations        []any      `json:"VolumeConfigurations"`
	EnableAutoHealing           bool       `json:"EnableAutoHealing"`
	AutoAssignElasticIPs        bool       `json:"AutoAssignElasticIps"`
	LifecycleEventConfiguration *struct {
		Shutdown *struct {
			ExecutionTimeout                int  `json:"ExecutionTimeout"`
			DelayUntilElbConnectionsDrained bool `json:"DelayUntilElbConnectionsDrained"`
		} `json:"Shutdown"`
	} `json:"LifecycleEventConfiguration"`
}

type owApp struct {
	StackID     string    `json:"StackId"`
	Shortname   string    `json:"Shortname"`
	Name        string    `json:"Name"`
	Type        string    `json:"Type"`
	AppSource   *owSource `json:"AppSource"`
	EnableSsl   bool      `json:"EnableSsl"`
	DataSources []any     `json:"DataSources"`
	Environment []struct {
		Key    string `json:"Key"`
		Secure bool   `json:"Secure"`
	} `json:"Environment"`
}

type owInstance struct {
	StackID             string   `json:"StackId"`
	InstanceID          string   `json:"InstanceId"`
	Ec2InstanceID       string   `json:"Ec2InstanceId"`
	Hostname            string   `json:"Hostname"`
	LayerIDs            []string `json:"LayerIds"`
	Os                  string   `json:"Os"`
	Platform            string   `json:"Platform"`
	Status              string   `json:"Status"`
	AutoScalingType     string   `json:"AutoScalingType"`
	InfrastructureClass string   `json:"InfrastructureClass"`
}

// ImportInput is the saved output of the four AWS CLI commands. Layers,
// Apps and Instances may be empty (not exported).
type ImportInput struct {
	Stacks, Layers, Apps, Instances []byte
	// StackID chooses the stack when Stacks holds several.
	StackID string
}

// NotCarried is something of the OpsWorks stack the model does not carry
// over, and why.
type NotCarried struct {
	// Item names it: "layer php-app default recipes", "app shop", ...
	Item   string
	Reason string
}

// ImportResult is an imported stack and the report of what did not carry
// over. Review it before use: Import never guesses silently; each
// assumption it made is in Notes.
type ImportResult struct {
	Stack *Stack
	// Instances are the EC2 instance IDs OpsWorks listed in each layer.
	Instances map[string][]string
	// NotCarried lists what was left out, with reasons.
	NotCarried []NotCarried
	// Notes are the assumptions made, to check.
	Notes []string
}

// MaxImportBytes bounds each input document (the CLI output of a large
// stack is a few megabytes).
const MaxImportBytes = 16 << 20

const filtered = "*****FILTERED*****"

var reSafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

func decodeStrict(name string, b []byte, key string, v any) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	if len(b) > MaxImportBytes {
		return ec2ops.InvalidInput("ImportInput."+name, fmt.Sprintf("%d bytes", len(b)), fmt.Sprintf("is larger than %d bytes", MaxImportBytes), "export one stack at a time")
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		return ec2ops.InvalidInput("ImportInput."+name, "", "is not the JSON object the AWS CLI prints: "+jsonReason(err), fmt.Sprintf("save the output of `aws opsworks describe-%s --output json`", strings.ToLower(name)))
	}
	raw, ok := top[key]
	if !ok {
		return ec2ops.InvalidInput("ImportInput."+name, "", fmt.Sprintf("has no %q list", key), fmt.Sprintf("save the output of `aws opsworks describe-%s --output json`", strings.ToLower(name)))
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return ec2ops.InvalidInput("ImportInput."+name, "", fmt.Sprintf("%s has an unexpected shape: %s", key, jsonReason(err)), "pass the CLI's JSON unmodified")
	}
	return nil
}

// jsonReason shortens a decoding error (never quoting the input).
func jsonReason(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %s is a JSON %s, not %s", te.Field, te.Value, te.Type)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	s := err.Error()
	if len(s) > 120 {
		s = s[:120]
	}
	return s
}

// Import reads a stack exported with the AWS CLI into the model. Only the
// custom layer data carries over: custom recipes per event, custom JSON,
// the custom cookbook source, the Shutdown timeout. The rest is listed in
// NotCarried with a reason; assumptions are listed in Notes. It returns an
// ec2ops.InputError for malformed input and never panics.
func Import(in ImportInput) (*ImportResult, error) {
	var stacks []owStack
	var layers []owLayer
	var apps []owApp
	var insts []owInstance
	if len(bytes.TrimSpace(in.Stacks)) == 0 {
		return nil, ec2ops.InvalidInput("ImportInput.Stacks", "", "is empty", "save the output of `aws opsworks describe-stacks --output json`")
	}
	for _, d := range []struct {
		name, key string
		b         []byte
		v         any
	}{{"Stacks", "Stacks", in.Stacks, &stacks}, {"Layers", "Layers", in.Layers, &layers}, {"Apps", "Apps", in.Apps, &apps}, {"Instances", "Instances", in.Instances, &insts}} {
		if err := decodeStrict(d.name, d.b, d.key, d.v); err != nil {
			return nil, err
		}
	}
	var st *owStack
	switch {
	case len(stacks) == 0:
		return nil, ec2ops.InvalidInput("ImportInput.Stacks", "", "lists no stack", "export the stack with describe-stacks --stack-ids ID")
	case in.StackID != "":
		for i := range stacks {
			if stacks[i].StackID == in.StackID {
				st = &stacks[i]
			}
		}
		if st == nil {
			return nil, ec2ops.InvalidInput("ImportInput.StackID", in.StackID, "is not in Stacks", "use one of the exported StackIds")
		}
	case len(stacks) > 1:
		return nil, ec2ops.InvalidInput("ImportInput.StackID", "", fmt.Sprintf("Stacks lists %d stacks", len(stacks)), "name the stack to import")
	default:
		st = &stacks[0]
	}
	res := &ImportResult{Instances: map[string][]string{}}
	skip := func(item, why string) { res.NotCarried = append(res.NotCarried, NotCarried{Item: item, Reason: why}) }
	name := strings.Trim(reSafeName.ReplaceAllString(st.Name, "-"), "-.")
	if len(name) > 128 {
		name = name[:128]
	}
	if name == "" {
		name = "imported"
	}
	if name != st.Name {
		res.Notes = append(res.Notes, fmt.Sprintf("stack name %q renamed %q (letters, digits, '.', '_', '-')", truncate(st.Name), name))
	}
	stack := &Stack{Name: name}
	attrs, err := ParseAttributes(st.CustomJSON)
	if err != nil {
		return nil, ec2ops.InvalidInput("Stacks.CustomJson", "", jsonReason(err), "fix the stack's custom JSON")
	}
	stack.Attributes = attrs
	stack.Sensitive = append(stack.Sensitive, filteredPaths(attrs, "")...)

	// Configuration manager and cookbooks.
	chef := &Chef{}
	if cm := st.ConfigurationManager; cm != nil {
		if !strings.EqualFold(cm.Name, "Chef") {
			return nil, ec2ops.InvalidInput("Stacks.ConfigurationManager.Name", cm.Name, "is not Chef", "only Chef stacks can be imported")
		}
		major, _, _ := strings.Cut(cm.Version, ".")
		switch major {
		case "11":
			chef.ChefClientVersion = "11"
			skip("Chef 11.10 built-in cookbooks", "Chef 11 stacks ran OpsWorks' built-in cookbooks (opsworks_*, deploy, and the built-in layers' recipes) before custom ones; they are not published for AWS-ApplyChefRecipes. Custom recipes that include or depend on them must be rewritten")
		case "12":
			chef.ChefClientVersion = "12"
		default:
			chef.ChefClientVersion = ""
			res.Notes = append(res.Notes, fmt.Sprintf("configuration manager version %q unknown: ChefClientVersion left to the document's default", truncate(cm.Version)))
		}
		if chef.ChefClientVersion != "" {
			res.Notes = append(res.Notes, fmt.Sprintf("ChefClientVersion set to %s as on OpsWorks; AWS-ApplyChefRecipes installs up to 18, consider upgrading after testing", chef.ChefClientVersion))
		}
	}
	if cc := st.ChefConfiguration; cc != nil && cc.ManageBerkshelf {
		skip("Berkshelf", "AWS-ApplyChefRecipes does not run Berkshelf; vendor the dependencies (berks vendor) into the cookbook archive")
	}
	if src := st.CustomCookbooksSource; st.UseCustomCookbooks && src != nil {
		s, notes, why := importSource(src)
		res.Notes = append(res.Notes, notes...)
		if why != "" {
			skip("custom cookbook source", why)
		} else {
			chef.Source = s
		}
	} else {
		skip("custom cookbook source", "the stack used no custom cookbooks: set Chef.Source before running")
	}
	stack.Backend = chef
	skip("data bags and search", "Chef 12 stacks exposed stack, layer, app and instance data as data bags (aws_opsworks_*) and through search; AWS-ApplyChefRecipes runs chef-client in local mode without them: pass what recipes need as attributes")
	if strings.Contains(strings.ToLower(st.DefaultOs), "windows") {
		skip("Windows default OS", "AWS-ApplyChefRecipes runs on Linux managed nodes only")
	}

	// Layers.
	byID := map[string]*Layer{}
	for _, l := range layers {
		if l.StackID != "" && l.StackID != st.StackID {
			continue
		}
		lname := strings.Trim(reSafeName.ReplaceAllString(cond(l.Shortname != "", l.Shortname, l.Name), "-"), "-.")
		if lname == "" || len(lname) > 128 {
			skip("layer "+truncate(l.Name), "no usable name")
			continue
		}
		if _, dup := stack.layer(lname); dup {
			skip("layer "+truncate(l.Name), "two layers share the short name "+lname)
			continue
		}
		layer := Layer{Name: lname, RunLists: map[Event][]string{},
			Selector: []Selector{{Key: "tag:opsworks:stack", Values: []string{st.Name}}, {Key: "tag-key", Values: []string{"opsworks:layer:" + lname}}}}
		if l.Type != "" && l.Type != "custom" {
			skip("layer "+lname+" type "+truncate(l.Type), "built-in layer types (their packages, recipes and HAProxy/MySQL/Ganglia/app-server setup) do not exist outside OpsWorks; only its custom recipes and JSON carry over")
		}
		if dr := l.DefaultRecipes.byEvent(); dr != nil {
			for _, ev := range Events {
				if len(dr[ev]) > 0 {
					skip(fmt.Sprintf("layer %s default %s recipes", lname, ev), "OpsWorks-owned recipes ("+truncate(strings.Join(dr[ev], ","))+") are not available to AWS-ApplyChefRecipes")
				}
			}
		}
		if cr := l.CustomRecipes.byEvent(); cr != nil {
			for _, ev := range Events {
				for _, r := range cr[ev] {
					rr := r
					if !strings.HasSuffix(rr, "]") {
						rr = "recipe[" + rr + "]"
					}
					if !reRecipe.MatchString(rr) {
						skip(fmt.Sprintf("layer %s %s recipe %s", lname, ev, truncate(r)), "not a cookbook::recipe name")
						continue
					}
					layer.RunLists[ev] = append(layer.RunLists[ev], rr)
				}
			}
		}
		la, err := ParseAttributes(l.CustomJSON)
		if err != nil {
			return nil, ec2ops.InvalidInput("Layers.CustomJson", lname, jsonReason(err), "fix the layer's custom JSON")
		}
		layer.Attributes = la
		stack.Sensitive = append(stack.Sensitive, filteredPaths(la, "")...)
		if lc := l.LifecycleEventConfiguration; lc != nil && lc.Shutdown != nil && lc.Shutdown.ExecutionTimeout > 0 {
			layer.Timeouts = map[Event]time.Duration{Shutdown: time.Duration(min(lc.Shutdown.ExecutionTimeout, 172800)) * time.Second}
			if lc.Shutdown.DelayUntilElbConnectionsDrained {
				skip("layer "+lname+" ELB draining before Shutdown", "deregister and drain in the replacement flow (lifecycle), before its BeforeTerminate hook")
			}
		}
		if len(l.Packages) > 0 {
			skip("layer "+lname+" packages", "OpsWorks installed them at Setup; install them from a recipe or bake them into the AMI")
		}
		if len(l.VolumeConfigurations) > 0 {
			skip("layer "+lname+" EBS volume configurations", "attach volumes with the launch template")
		}
		if l.EnableAutoHealing {
			skip("layer "+lname+" auto healing", "use the recovery package (alarms and a watchdog)")
		}
		if l.AutoAssignElasticIPs {
			skip("layer "+lname+" Elastic IPs", "lifecycle moves Elastic IPs to replacements")
		}
		stack.Layers = append(stack.Layers, layer)
		byID[l.LayerID] = &stack.Layers[len(stack.Layers)-1]
	}
	if len(stack.Layers) > 0 {
		res.Notes = append(res.Notes, fmt.Sprintf("layer selectors use the tags OpsWorks put on its EC2 instances (opsworks:stack=%s, opsworks:layer:SHORTNAME); tag new instances the same way or replace the selectors", truncate(st.Name)))
	}
	// Recompute pointers (append may have moved the layers).
	for id, l := range byID {
		if got, ok := stack.layer(l.Name); ok {
			byID[id] = got
		}
	}

	// Instances.
	for _, i := range insts {
		if i.StackID != "" && i.StackID != st.StackID {
			continue
		}
		label := cond(i.Ec2InstanceID != "", i.Ec2InstanceID, cond(i.Hostname != "", truncate(i.Hostname), truncate(i.InstanceID)))
		switch {
		case strings.EqualFold(i.InfrastructureClass, "on-premises"):
			skip("instance "+label, "on-premises instance: register it as a hybrid managed node; layer selectors match EC2 tags only")
			continue
		case strings.Contains(strings.ToLower(i.Os+i.Platform), "windows"):
			skip("instance "+label, "Windows: AWS-ApplyChefRecipes and AWS-ApplyAnsiblePlaybooks run on Linux only")
			continue
		case i.AutoScalingType != "":
			skip("instance "+label+" "+truncate(i.AutoScalingType)+"-based scaling", "OpsWorks started and stopped it on load or a schedule; the instance is kept, its scaling is not: use an Auto Scaling group")
		}
		if !awsid.Instance(i.Ec2InstanceID) {
			skip("instance "+label, "no EC2 instance ID (never started)")
			continue
		}
		for _, lid := range i.LayerIDs {
			if l, ok := byID[lid]; ok {
				res.Instances[l.Name] = append(res.Instances[l.Name], i.Ec2InstanceID)
			}
		}
		if len(i.LayerIDs) > 1 {
			res.Notes = append(res.Notes, fmt.Sprintf("instance %s was in %d layers; a deployment runs one layer's run list per instance, so give it one layer's tags", i.Ec2InstanceID, len(i.LayerIDs)))
		}
	}
	for _, ids := range res.Instances {
		sort.Strings(ids)
	}

	// Apps.
	for _, a := range apps {
		if a.StackID != "" && a.StackID != st.StackID {
			continue
		}
		n := truncate(cond(a.Shortname != "", a.Shortname, a.Name))
		why := "apps do not carry over: deploy recipes fetched the app source (" + cond(a.AppSource != nil, truncate(srcType(a.AppSource)), "none") + ") into OpsWorks' deploy layout; deploy it from a Deploy recipe or playbook"
		if a.EnableSsl {
			why += "; its SSL certificate was filtered from the export"
		}
		if len(a.DataSources) > 0 {
			why += "; its data sources (RDS, OpsWorks MySQL) must be passed as attributes"
		}
		secure := 0
		for _, e := range a.Environment {
			if e.Secure {
				secure++
			}
		}
		if secure > 0 {
			why += fmt.Sprintf("; %d secure environment variable(s) were filtered", secure)
		}
		skip("app "+n, why)
	}
	for _, l := range stack.Layers {
		if len(l.RunLists) == 0 {
			res.Notes = append(res.Notes, "layer "+l.Name+" has no custom recipes: add run lists before running events")
		}
	}
	sort.Strings(stack.Sensitive)
	for _, p := range stack.Sensitive {
		res.Notes = append(res.Notes, fmt.Sprintf("attribute %s was filtered by OpsWorks (*****FILTERED*****): set its value; it is marked sensitive", p))
	}
	res.Stack = stack
	return res, nil
}

func srcType(s *owSource) string { return s.Type }

// importSource maps an OpsWorks source to aws:downloadContent's.
func importSource(s *owSource) (Source, []string, string) {
	var notes []string
	switch strings.ToLower(s.Type) {
	case "git":
		src := Source{Type: "Git", Repository: s.URL}
		if strings.HasPrefix(s.URL, "https://github.com/") {
			notes = append(notes, "Git source kept as Git (not GitHub): aws:downloadContent clones it")
		}
		if s.Revision != "" {
			if regexp.MustCompile(`^[0-9a-f]{40}$`).MatchString(s.Revision) {
				src.GetOptions = "commitID:" + s.Revision
			} else {
				src.GetOptions = "branch:" + s.Revision
				notes = append(notes, fmt.Sprintf("revision %q taken as a branch; use commitID: for a tag or commit", truncate(s.Revision)))
			}
		}
		if s.SSHKey != "" {
			notes = append(notes, "the Git SSH key was filtered by OpsWorks: store it as a SecureString and set Source.PrivateSSHKey to {{ssm-secure:NAME}}")
		}
		return src, notes, ""
	case "s3":
		if s.Username != "" || s.Password != "" {
			notes = append(notes, "the S3 cookbook source's access keys are not used: the instance profile needs s3:GetObject on it")
		}
		return Source{Type: "S3", Path: s.URL}, notes, ""
	case "archive":
		src := Source{Type: "HTTP", URL: s.URL}
		if s.Username != "" {
			src.Username, src.AuthMethod = s.Username, "Basic"
			notes = append(notes, "the HTTP archive's password was filtered by OpsWorks: set Source.Password to {{ssm-secure:NAME}}")
		}
		return src, notes, ""
	case "svn":
		return Source{}, nil, "Subversion is not a source type aws:downloadContent supports: export the cookbooks to S3 or Git"
	}
	return Source{}, nil, fmt.Sprintf("unknown source type %q", truncate(s.Type))
}

// filteredPaths returns the dotted paths whose value is *****FILTERED*****.
func filteredPaths(m map[string]any, prefix string) []string {
	var out []string
	for k, v := range m {
		p := cond(prefix == "", k, prefix+"."+k)
		switch x := v.(type) {
		case string:
			if x == filtered {
				out = append(out, p)
			}
		case map[string]any:
			out = append(out, filteredPaths(x, p)...)
		}
	}
	return out
}

func truncate(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}
