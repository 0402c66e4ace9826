package opsworks

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/patching"
)

// Documents the backends send.
const (
	DocApplyChefRecipes      = "AWS-ApplyChefRecipes"
	DocApplyAnsiblePlaybooks = "AWS-ApplyAnsiblePlaybooks"
)

// Outcome is what a run did on one instance.
type Outcome string

// Outcomes of a run on an instance.
const (
	// Unchanged: the run succeeded and changed nothing (or, dry, would
	// change nothing).
	Unchanged Outcome = "Unchanged"
	// Changed: the run succeeded and changed resources.
	Changed Outcome = "Changed"
	// Applied: the run succeeded; the tool did not say whether it changed
	// anything.
	Applied Outcome = "Applied"
	// WouldChange: a dry run found changes to make (nothing was changed).
	WouldChange Outcome = "WouldChange"
	// Failed: the run failed (Puppet exit code 4 or 1, Chef or Ansible
	// errors, a timeout).
	Failed Outcome = "Failed"
	// ChangedWithFailures: Puppet exit code 6, some resources changed and
	// some failed.
	ChangedWithFailures Outcome = "ChangedWithFailures"
	// Unmanaged: the instance has no online SSM agent; nothing was sent.
	Unmanaged Outcome = "Unmanaged"
	// NotRun: the deployment stopped (failure threshold, cancellation)
	// before the instance's wave.
	NotRun Outcome = "NotRun"
)

// Succeeded reports whether the outcome is a success.
func (o Outcome) Succeeded() bool {
	switch o {
	case Unchanged, Changed, Applied, WouldChange:
		return true
	}
	return false
}

// RunSpec is one lifecycle event run on a layer, for a Backend to turn
// into a Run Command request.
type RunSpec struct {
	Event   Event
	RunList []string
	// Attributes are the merged custom JSON (stack < layer < deployment).
	Attributes map[string]any
	// Sensitive reports that Attributes hold secrets: the parameter that
	// carries them must be listed in the command's Sensitive.
	Sensitive bool
	DryRun    bool
	// Timeout bounds the run on an instance (zero: the document default).
	Timeout time.Duration
}

// Backend turns a lifecycle event into a Run Command request and reads
// per-instance outcomes back. *Chef, *Ansible and *Puppet implement it.
type Backend interface {
	// Tool names the backend: "chef", "ansible" or "puppet".
	Tool() string
	// Validate checks the backend's settings (an ec2ops.InputError).
	Validate() error
	// ValidateRunList checks a run list (an ec2ops.InputError).
	ValidateRunList(runList []string) error
	// Command builds the request; the Configurator adds the instances,
	// rate controls and comment.
	Command(spec RunSpec) (patching.Command, error)
	// Outcome reads what an invocation did.
	Outcome(inv patching.Invocation, dryRun bool) Outcome
}

func asInput(err error, ie **ec2ops.InputError) bool { return errors.As(err, ie) }

// Source is where cookbooks or playbooks come from, as the documents'
// SourceType and SourceInfo parameters take it (aws:downloadContent).
type Source struct {
	// Type is "S3", "GitHub", "Git" or "HTTP" (Ansible: S3 or GitHub).
	Type string
	// Path: S3, the https URL of an object or prefix; GitHub, the path in
	// the repository.
	Path string
	// URL of an HTTP archive.
	URL string
	// Owner and Repository of a GitHub source; Repository is the clone
	// URL of a Git source.
	Owner, Repository string
	// GetOptions selects the revision: "branch:main" or "commitID:SHA".
	GetOptions string
	// TokenInfo is a GitHub token reference, "{{ssm-secure:NAME}}".
	TokenInfo string
	// PrivateSSHKey (Git), Username and Password (Git, HTTP): use
	// "{{ssm-secure:NAME}}" references; a literal value is a secret and
	// makes SourceInfo sensitive.
	PrivateSSHKey, Username, Password string
	// AuthMethod for HTTP: "None", "Basic" or "Digest".
	AuthMethod string
	// AllowInsecureDownload lets an HTTP source use plain http.
	AllowInsecureDownload bool
}

var reSecureRef = regexp.MustCompile(`^\{\{\s*ssm-secure:[A-Za-z0-9_./-]+\s*\}\}$`)

// info renders SourceInfo and reports whether it holds a literal secret.
func (s Source) info() (string, bool) {
	m := map[string]any{}
	put := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	secret := false
	lit := func(k, v string) {
		put(k, v)
		if v != "" && !reSecureRef.MatchString(v) {
			secret = true
		}
	}
	switch s.Type {
	case "S3":
		put("path", s.Path)
	case "GitHub":
		put("owner", s.Owner)
		put("repository", s.Repository)
		put("path", s.Path)
		put("getOptions", s.GetOptions)
		lit("tokenInfo", s.TokenInfo)
	case "Git":
		put("repository", s.Repository)
		put("getOptions", s.GetOptions)
		put("username", s.Username)
		lit("privateSSHKey", s.PrivateSSHKey)
		lit("password", s.Password)
	case "HTTP":
		put("url", s.URL)
		put("authMethod", s.AuthMethod)
		put("username", s.Username)
		lit("password", s.Password)
		if s.AllowInsecureDownload {
			m["allowInsecureDownload"] = true
		}
	}
	b, _ := json.Marshal(m) // strings and a bool always marshal
	return string(b), secret
}

func (s Source) validate(field string, types ...string) error {
	if !slices.Contains(types, s.Type) {
		return ec2ops.InvalidInput(field+".Type", s.Type, "is not a source type the document takes", "use one of "+strings.Join(types, ", "))
	}
	need := map[string]string{"S3": s.Path, "GitHub": s.Repository, "Git": s.Repository, "HTTP": s.URL}[s.Type]
	if need == "" {
		what := map[string]string{"S3": "Path (the https URL of the object or prefix)", "GitHub": "Owner and Repository", "Git": "Repository (the clone URL)", "HTTP": "URL"}[s.Type]
		return ec2ops.InvalidInput(field, s.Type, "is missing its location", "set "+what)
	}
	if s.Type == "GitHub" && s.Owner == "" {
		return ec2ops.InvalidInput(field+".Owner", "", "is empty", "name the GitHub owner of the repository")
	}
	if s.GetOptions != "" && !strings.HasPrefix(s.GetOptions, "branch:") && !strings.HasPrefix(s.GetOptions, "commitID:") {
		return ec2ops.InvalidInput(field+".GetOptions", s.GetOptions, `is not "branch:NAME" or "commitID:SHA"`, `e.g. "branch:main"`)
	}
	if s.TokenInfo != "" && !reSecureRef.MatchString(s.TokenInfo) {
		return ec2ops.InvalidInput(field+".TokenInfo", "", "must be a {{ssm-secure:NAME}} reference", "store the token as a SecureString parameter and reference it")
	}
	return nil
}

func boolParam(b bool) []string {
	if b {
		return []string{"True"}
	}
	return []string{"False"}
}

// Chef runs recipes with AWS-ApplyChefRecipes: chef-client in local mode
// on each instance, WhyRun as the dry run.
type Chef struct {
	// Source of the cookbooks: S3, GitHub, Git or HTTP.
	Source Source
	// ChefClientVersion is "11" to "18" or "None" (use the installed
	// client); empty leaves the document's default.
	ChefClientVersion string
	// ChefClientArguments are extra chef-client arguments.
	ChefClientArguments string
	// JsonAttributesSources are S3 URLs of extra JSON attribute files.
	JsonAttributesSources []string
	// ComplianceSeverity (Critical, High, Medium, Low, Informational,
	// Unspecified, None), ComplianceType ("Custom:Chef" by default) and
	// ComplianceReportBucket report the run to Systems Manager Compliance.
	ComplianceSeverity, ComplianceType, ComplianceReportBucket string
}

var reRecipe = regexp.MustCompile(`^(recipe|role)\[[A-Za-z0-9_.-]+(::[A-Za-z0-9_.-]+)?\]$|^[A-Za-z0-9_.-]+(::[A-Za-z0-9_.-]+)?$`)

// Tool returns "chef".
func (c *Chef) Tool() string { return "chef" }

// Validate checks the settings.
func (c *Chef) Validate() error {
	if err := c.Source.validate("Chef.Source", "S3", "GitHub", "Git", "HTTP"); err != nil {
		return err
	}
	switch c.ChefClientVersion {
	case "", "None", "11", "12", "13", "14", "15", "16", "17", "18":
	default:
		return ec2ops.InvalidInput("Chef.ChefClientVersion", c.ChefClientVersion, "AWS-ApplyChefRecipes installs Chef 11 to 18", `use "18", or "None" to use the installed client`)
	}
	switch c.ComplianceSeverity {
	case "", "Critical", "High", "Medium", "Low", "Informational", "Unspecified", "None":
	default:
		return ec2ops.InvalidInput("Chef.ComplianceSeverity", c.ComplianceSeverity, "is not a compliance severity", "use Critical, High, Medium, Low, Informational, Unspecified or None")
	}
	return nil
}

// ValidateRunList checks recipe names.
func (c *Chef) ValidateRunList(rl []string) error {
	if len(rl) == 0 {
		return ec2ops.InvalidInput("RunList", "", "is empty", `list recipes, e.g. "recipe[nginx::default]"`)
	}
	for _, r := range rl {
		if !reRecipe.MatchString(r) {
			return ec2ops.InvalidInput("RunList", r, "is not a recipe", `write "recipe[cookbook::recipe]", "cookbook::recipe" or "role[name]"`)
		}
	}
	return nil
}

func chefRunList(rl []string) string {
	out := make([]string, len(rl))
	for i, r := range rl {
		if strings.HasSuffix(r, "]") {
			out[i] = r
		} else {
			out[i] = "recipe[" + r + "]"
		}
	}
	return strings.Join(out, ",") // the document wants no space after commas
}

// Command builds the AWS-ApplyChefRecipes request.
func (c *Chef) Command(spec RunSpec) (patching.Command, error) {
	info, secret := c.Source.info()
	p := map[string][]string{
		"SourceType": {c.Source.Type},
		"SourceInfo": {info},
		"RunList":    {chefRunList(spec.RunList)},
		"WhyRun":     boolParam(spec.DryRun),
	}
	cmd := patching.Command{DocumentName: DocApplyChefRecipes, Parameters: p}
	if secret {
		cmd.Sensitive = append(cmd.Sensitive, "SourceInfo")
	}
	if len(spec.Attributes) > 0 {
		b, err := json.Marshal(spec.Attributes)
		if err != nil {
			return patching.Command{}, ec2ops.InvalidInput("Attributes", "", "cannot be rendered as JSON: "+err.Error(), "use JSON values only")
		}
		p["JsonAttributesContent"] = []string{string(b)}
		if spec.Sensitive {
			cmd.Sensitive = append(cmd.Sensitive, "JsonAttributesContent")
		}
	}
	if len(c.JsonAttributesSources) > 0 {
		p["JsonAttributesSources"] = []string{strings.Join(c.JsonAttributesSources, ",")}
	}
	set := func(k, v string) {
		if v != "" {
			p[k] = []string{v}
		}
	}
	set("ChefClientVersion", c.ChefClientVersion)
	set("ChefClientArguments", c.ChefClientArguments)
	set("ComplianceSeverity", c.ComplianceSeverity)
	set("ComplianceType", c.ComplianceType)
	set("ComplianceReportBucket", c.ComplianceReportBucket)
	if spec.Timeout > 0 {
		p["ChefExecutionTimeout"] = []string{strconv.Itoa(int(spec.Timeout / time.Second))}
	}
	return cmd, nil
}

var (
	reChefUpdated  = regexp.MustCompile(`(\d+)/\d+ resources (would have been )?updated`)
	reAnsibleRecap = regexp.MustCompile(`changed=(\d+)`)
)

// Outcome reads chef-client's summary line.
func (c *Chef) Outcome(inv patching.Invocation, dry bool) Outcome {
	if !inv.Succeeded() {
		return Failed
	}
	return countOutcome(reChefUpdated, inv.Output+"\n"+inv.Stdout, dry)
}

func countOutcome(re *regexp.Regexp, out string, dry bool) Outcome {
	m := re.FindStringSubmatch(out)
	if m == nil {
		return Applied
	}
	n, _ := strconv.Atoi(m[1])
	switch {
	case n == 0:
		return Unchanged
	case dry:
		return WouldChange
	}
	return Changed
}

// Ansible runs one playbook with AWS-ApplyAnsiblePlaybooks (ansible-playbook
// against localhost on each instance), check mode as the dry run.
type Ansible struct {
	// Source of the playbooks: S3 or GitHub.
	Source Source
	// InstallDependencies installs Ansible (and Python, unzip) when missing.
	InstallDependencies bool
	// Verbose is "", "-v", "-vv", "-vvv" or "-vvvv".
	Verbose string
}

// Tool returns "ansible".
func (a *Ansible) Tool() string { return "ansible" }

// Validate checks the settings.
func (a *Ansible) Validate() error {
	if err := a.Source.validate("Ansible.Source", "S3", "GitHub"); err != nil {
		return err
	}
	switch a.Verbose {
	case "", "-v", "-vv", "-vvv", "-vvvv":
	default:
		return ec2ops.InvalidInput("Ansible.Verbose", a.Verbose, "is not an Ansible verbosity", `use "-v" to "-vvvv"`)
	}
	return nil
}

var rePlaybook = regexp.MustCompile(`^[A-Za-z0-9_./-]+\.ya?ml$`)

// ValidateRunList takes exactly one playbook file per event (the document
// runs one; import_playbook composes several).
func (a *Ansible) ValidateRunList(rl []string) error {
	if len(rl) != 1 {
		return ec2ops.InvalidInput("RunList", strings.Join(rl, ","), "AWS-ApplyAnsiblePlaybooks runs one playbook", "list one playbook file; compose others with import_playbook")
	}
	if !rePlaybook.MatchString(rl[0]) || strings.Contains(rl[0], "..") {
		return ec2ops.InvalidInput("RunList", rl[0], "is not a relative .yml playbook path", `e.g. "site.yml" or "playbooks/web.yml"`)
	}
	return nil
}

var (
	reVarName  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	reVarValue = regexp.MustCompile(`^[^\s"'\\$` + "`" + `]*$`)
)

// extraVariables renders flat attributes as the document's ExtraVariables:
// key=value pairs separated by spaces. Nested or quoted values cannot be
// passed that way.
func extraVariables(attrs map[string]any) (string, error) {
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		if !reVarName.MatchString(k) {
			return "", ec2ops.InvalidInput("Attributes", k, "is not an Ansible variable name", "use letters, digits and underscores")
		}
		var s string
		switch v := attrs[k].(type) {
		case string:
			s = v
		case bool:
			s = strconv.FormatBool(v)
		case float64:
			s = strconv.FormatFloat(v, 'f', -1, 64)
		case json.Number:
			s = v.String()
		default:
			return "", ec2ops.InvalidInput("Attributes", k, "is an object or array; ExtraVariables takes key=value pairs", "keep structured variables in the playbook's vars files, or flatten them")
		}
		if !reVarValue.MatchString(s) {
			return "", ec2ops.InvalidInput("Attributes", k, "has spaces, quotes or shell characters, which ExtraVariables cannot carry", "put the value in the playbook's vars or an SSM parameter lookup")
		}
		parts = append(parts, k+"="+s)
	}
	return strings.Join(parts, " "), nil
}

// Command builds the AWS-ApplyAnsiblePlaybooks request.
func (a *Ansible) Command(spec RunSpec) (patching.Command, error) {
	info, secret := a.Source.info()
	p := map[string][]string{
		"SourceType":          {a.Source.Type},
		"SourceInfo":          {info},
		"InstallDependencies": boolParam(a.InstallDependencies),
		"PlaybookFile":        {spec.RunList[0]},
		"Check":               boolParam(spec.DryRun),
	}
	cmd := patching.Command{DocumentName: DocApplyAnsiblePlaybooks, Parameters: p}
	if secret {
		cmd.Sensitive = append(cmd.Sensitive, "SourceInfo")
	}
	if len(spec.Attributes) > 0 {
		ev, err := extraVariables(spec.Attributes)
		if err != nil {
			return patching.Command{}, err
		}
		p["ExtraVariables"] = []string{ev}
		if spec.Sensitive {
			cmd.Sensitive = append(cmd.Sensitive, "ExtraVariables")
		}
	}
	if a.Verbose != "" {
		p["Verbose"] = []string{a.Verbose}
	}
	if spec.Timeout > 0 {
		p["TimeoutSeconds"] = []string{strconv.Itoa(int(spec.Timeout / time.Second))}
	}
	return cmd, nil
}

// Outcome reads the PLAY RECAP's changed count.
func (a *Ansible) Outcome(inv patching.Invocation, dry bool) Outcome {
	if !inv.Succeeded() {
		return Failed
	}
	return countOutcome(reAnsibleRecap, inv.Output+"\n"+inv.Stdout, dry)
}

// Puppet runs "puppet apply" (masterless, classes from ModulePath) or
// "puppet agent --test" (against a Puppet server) with --detailed-exitcodes
// through AWS-RunShellScript; --noop is the dry run. The merged attributes
// are written as an external fact file (facter facts.d), readable by root
// only, before the run.
type Puppet struct {
	// Agent runs "puppet agent --test" against Server; otherwise
	// "puppet apply" includes the run list's classes.
	Agent bool
	// Server is the Puppet server (agent mode); empty uses puppet.conf.
	Server string
	// Environment is the Puppet environment; empty uses the default.
	Environment string
	// ModulePath for puppet apply; empty uses the default.
	ModulePath string
}

// Tool returns "puppet".
func (p *Puppet) Tool() string { return "puppet" }

var (
	reHost      = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})(:[0-9]{1,5})?$`)
	reEnv       = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)
	rePath      = regexp.MustCompile(`^/[A-Za-z0-9_./:-]*$`)
	rePuppetCls = regexp.MustCompile(`^[a-z][a-z0-9_]*(::[a-z][a-z0-9_]*)*$`)
)

// Validate checks the settings (they go into a shell script: only safe
// characters are accepted).
func (p *Puppet) Validate() error {
	if p.Server != "" && !reHost.MatchString(p.Server) {
		return ec2ops.InvalidInput("Puppet.Server", p.Server, "is not a host name", `e.g. "puppet.example.com" or "puppet.example.com:8140"`)
	}
	if p.Environment != "" && !reEnv.MatchString(p.Environment) {
		return ec2ops.InvalidInput("Puppet.Environment", p.Environment, "is not a Puppet environment name", "use lower-case letters, digits and underscores")
	}
	if p.ModulePath != "" && !rePath.MatchString(p.ModulePath) {
		return ec2ops.InvalidInput("Puppet.ModulePath", p.ModulePath, "is not an absolute path", "e.g. /etc/puppetlabs/code/modules")
	}
	return nil
}

// ValidateRunList checks class names (apply) or tags (agent, may be empty).
func (p *Puppet) ValidateRunList(rl []string) error {
	if len(rl) == 0 && !p.Agent {
		return ec2ops.InvalidInput("RunList", "", "puppet apply needs classes", `list classes, e.g. "role::web"`)
	}
	for _, c := range rl {
		if !rePuppetCls.MatchString(c) {
			return ec2ops.InvalidInput("RunList", c, "is not a Puppet class or tag name", `e.g. "role::web"`)
		}
	}
	return nil
}

// puppetFactsFile is where the attributes go (facter external facts).
const puppetFactsFile = "/etc/puppetlabs/facter/facts.d/ec2ops.json"

// Command builds the AWS-RunShellScript request.
func (p *Puppet) Command(spec RunSpec) (patching.Command, error) {
	mode := "apply"
	if p.Agent {
		mode = "agent"
	}
	lines := []string{
		"#!/bin/bash",
		fmt.Sprintf("# ec2ops:puppet mode=%s event=%s", mode, spec.Event),
		"export PATH=/opt/puppetlabs/bin:$PATH",
	}
	if len(spec.Attributes) > 0 {
		b, err := json.Marshal(spec.Attributes)
		if err != nil {
			return patching.Command{}, ec2ops.InvalidInput("Attributes", "", "cannot be rendered as JSON: "+err.Error(), "use JSON values only")
		}
		lines = append(lines,
			"mkdir -p /etc/puppetlabs/facter/facts.d",
			"umask 077",
			fmt.Sprintf("echo '%s' | base64 -d > %s", base64.StdEncoding.EncodeToString(b), puppetFactsFile))
	}
	noop := ""
	if spec.DryRun {
		noop = " --noop"
	}
	var run string
	if p.Agent {
		run = "puppet agent --test --detailed-exitcodes" + noop
		if p.Server != "" {
			run += " --server=" + p.Server
		}
		if p.Environment != "" {
			run += " --environment=" + p.Environment
		}
		if len(spec.RunList) > 0 {
			run += " --tags=" + strings.Join(spec.RunList, ",")
		}
	} else {
		run = "puppet apply --detailed-exitcodes" + noop
		if p.ModulePath != "" {
			run += " --modulepath=" + p.ModulePath
		}
		if p.Environment != "" {
			run += " --environment=" + p.Environment
		}
		run += " -e 'include " + strings.Join(spec.RunList, ", ") + "'"
	}
	lines = append(lines,
		run+" > /var/log/ec2ops-puppet.log 2>&1",
		"rc=$?",
		`echo "ec2ops-puppet-exitcode=$rc"`,
		"tail -c 2000 /var/log/ec2ops-puppet.log",
		"case $rc in 0|2) exit 0 ;; *) exit $rc ;; esac")
	cmd := patching.Command{DocumentName: patching.DocRunShellScript, Parameters: map[string][]string{"commands": lines}, ExecutionTimeout: spec.Timeout}
	if spec.Sensitive {
		cmd.Sensitive = []string{"commands"}
	}
	return cmd, nil
}

var rePuppetExit = regexp.MustCompile(`ec2ops-puppet-exitcode=(\d+)`)

// Outcome maps Puppet's detailed exit codes: 0 no change, 2 changed,
// 4 failures, 6 changed with failures (1: the run itself failed).
func (p *Puppet) Outcome(inv patching.Invocation, dry bool) Outcome {
	code := inv.ResponseCode
	if m := rePuppetExit.FindStringSubmatch(inv.Output + "\n" + inv.Stdout); m != nil {
		code, _ = strconv.Atoi(m[1])
	}
	switch {
	case inv.Succeeded() && code == 0:
		return Unchanged
	case inv.Succeeded() && code == 2 && dry:
		return WouldChange
	case inv.Succeeded() && code == 2:
		return Changed
	case inv.Succeeded():
		return Applied
	case code == 6:
		return ChangedWithFailures
	}
	return Failed
}
