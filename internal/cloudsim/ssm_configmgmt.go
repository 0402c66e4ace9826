package cloudsim

// Configuration management through Run Command: the documents
// AWS-ApplyChefRecipes and AWS-ApplyAnsiblePlaybooks, and Puppet and agent
// bootstrap scripts run by AWS-RunShellScript.
//
// Model. Every instance has a configuration node: for each tool (chef,
// ansible, puppet) the digest of the configuration last applied, and the
// agents bootstrapped on it (chef-client, puppet-agent) with their server.
// A run converges the node to the digest of what it was sent (source, run
// list or playbook, attributes): when the digest differs it changes
// resources, when it is the same it changes none. Dry runs (Chef WhyRun,
// Ansible Check, Puppet --noop) report what would change and change
// nothing. A seeded share of real runs fails (ConfigMgmtOptions.FailureRate,
// or a script set with ScriptConfigManagement); a failed run leaves the
// previous configuration in place.
//
// Puppet runs are AWS-RunShellScript invocations whose commands carry the
// marker line "# ec2ops:puppet" (what opsworks sends). The simulated script
// behaves as that script does: it runs puppet with --detailed-exitcodes
// (0 no change, 2 changed, 4 failures, 6 changed with failures; "puppet
// agent" and "puppet apply" man pages), prints "ec2ops-puppet-exitcode=N"
// first, and exits 0 for 0 and 2, N otherwise. Bootstrap scripts carry
// "# ec2ops:bootstrap tool=T server=URL": the first run installs and
// registers the agent, later runs find it and change nothing. Other shell
// commands keep the AWS-RunShellScript behaviour (Sim.ScriptShell).
//
// Parameters. Source: the AWS-ApplyChefRecipes and AWS-ApplyAnsiblePlaybooks
// documents as the Systems Manager user guide describes them ("Creating
// associations that run Chef recipes": SourceType Git, GitHub, HTTP or S3,
// SourceInfo as JSON, RunList "recipe[cb::r],recipe[cb::r2]",
// JsonAttributesSources, JsonAttributesContent, ChefClientVersion 11 to 18
// or None, ChefClientArguments, WhyRun, ComplianceSeverity, ComplianceType,
// ComplianceReportBucket, ChefExecutionTimeout; "Creating associations that
// run Ansible playbooks": SourceType GitHub or S3, SourceInfo, InstallDependencies,
// PlaybookFile, ExtraVariables, Check, Verbose -v to -vvvv, TimeoutSeconds).
// SourceInfo keys are those amazon-ssm-agent's aws:downloadContent plugin
// unmarshals: S3 path; GitHub owner, repository, path, getOptions,
// tokenInfo; Git repository, privateSSHKey, skipHostKeyChecking, username,
// password, getOptions; HTTP url, authMethod, username, password,
// allowInsecureDownload. Unset optional parameters are passed as "-" by
// callers that follow the console's convention; the simulator accepts both.

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Documents and markers of the configuration-management model.
const (
	DocApplyChefRecipes      = "AWS-ApplyChefRecipes"
	DocApplyAnsiblePlaybooks = "AWS-ApplyAnsiblePlaybooks"
	PuppetMarker             = "# ec2ops:puppet"
	BootstrapMarker          = "# ec2ops:bootstrap"
	PuppetExitMarker         = "ec2ops-puppet-exitcode="
)

var (
	chefParams = []string{"SourceType", "SourceInfo", "RunList", "JsonAttributesSources", "JsonAttributesContent",
		"ChefClientVersion", "ChefClientArguments", "WhyRun", "ComplianceSeverity", "ComplianceType",
		"ComplianceReportBucket", "ChefExecutionTimeout"}
	ansibleParams = []string{"SourceType", "SourceInfo", "InstallDependencies", "PlaybookFile", "ExtraVariables",
		"Check", "Verbose", "TimeoutSeconds"}
	sourceKeys = map[string][]string{
		"S3":     {"path"},
		"GitHub": {"owner", "repository", "path", "getOptions", "tokenInfo"},
		"Git":    {"repository", "privateSSHKey", "skipHostKeyChecking", "username", "password", "getOptions"},
		"HTTP":   {"url", "authMethod", "username", "password", "allowInsecureDownload"},
	}
	sourceRequired = map[string]string{"S3": "path", "GitHub": "repository", "Git": "repository", "HTTP": "url"}
)

// ConfigMgmtOptions sizes the configuration-management model. Zero fields
// take their defaults.
type ConfigMgmtOptions struct {
	// Run is how long a Chef, Ansible or Puppet run takes. Default 20s..120s.
	Run Dist
	// Bootstrap is how long installing and registering an agent takes the
	// first time. Default 60s..180s.
	Bootstrap Dist
	// FailureRate is the share of real (not dry) runs that fail.
	FailureRate float64
}

// ConfigRun describes one simulated run to a script set with
// ScriptConfigManagement.
type ConfigRun struct {
	Tool       string // "chef", "ansible" or "puppet"
	InstanceID string
	RunList    []string // recipes, the playbook, or the puppet command
	DryRun     bool
}

// ConfigNodeView is what the model knows of one instance.
type ConfigNodeView struct {
	// Applied is the digest of the configuration last applied, by tool.
	Applied map[string]string
	// Runs counts real runs that changed something, by tool; DryRuns
	// counts dry runs.
	Runs, DryRuns map[string]int
	// Agents are the bootstrapped agents and their server, by tool.
	Agents map[string]string
}

type cmNode struct {
	applied       map[string]string
	runs, dryRuns map[string]int
	agents        map[string]string
}

type cmState struct {
	opts   ConfigMgmtOptions
	script func(ConfigRun) (fail bool)
	nodes  map[string]*cmNode
}

// initConfigMgmt registers the documents (after initSSM).
func (s *Sim) initConfigMgmt() {
	s.cm = cmState{nodes: map[string]*cmNode{}}
	s.cm.opts.withDefaults()
	s.registerDocument(DocApplyChefRecipes, Document{
		Plugin: "runChefRecipes", Parameters: chefParams, Required: []string{"SourceType", "SourceInfo", "RunList"},
		ExecutionTimeout: time.Hour, Run: s.runChef, check: checkChefParams,
	})
	s.registerDocument(DocApplyAnsiblePlaybooks, Document{
		Plugin: "runShellScript", Parameters: ansibleParams, Required: []string{"SourceInfo", "PlaybookFile"},
		ExecutionTimeout: time.Hour, Run: s.runAnsible, check: checkAnsibleParams,
	})
	shell := *s.ssm.docs["AWS-RunShellScript"]
	prev := shell.Run
	shell.Run = func(r DocumentRun) DocumentResult {
		if res, ok := s.runConfigShell(r); ok {
			return res
		}
		return prev(r)
	}
	s.ssm.docs["AWS-RunShellScript"] = &shell
}

func (o *ConfigMgmtOptions) withDefaults() {
	o.Run = o.Run.orDefault(20*time.Second, 120*time.Second)
	o.Bootstrap = o.Bootstrap.orDefault(60*time.Second, 180*time.Second)
}

// SetConfigManagement replaces the model's options.
func (s *Sim) SetConfigManagement(o ConfigMgmtOptions) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o.withDefaults()
	s.cm.opts = o
}

// ScriptConfigManagement makes fn decide which real runs fail (on top of
// FailureRate); nil removes the script. fn runs with the Sim locked and
// must not call the Sim.
func (s *Sim) ScriptConfigManagement(fn func(ConfigRun) (fail bool)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cm.script = fn
}

// ConfigNode returns what the model knows of instance id.
func (s *Sim) ConfigNode(id string) ConfigNodeView {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.cmNodeOf(id)
	v := ConfigNodeView{Applied: map[string]string{}, Runs: map[string]int{}, DryRuns: map[string]int{}, Agents: map[string]string{}}
	for k, x := range n.applied {
		v.Applied[k] = x
	}
	for k, x := range n.runs {
		v.Runs[k] = x
	}
	for k, x := range n.dryRuns {
		v.DryRuns[k] = x
	}
	for k, x := range n.agents {
		v.Agents[k] = x
	}
	return v
}

func (s *Sim) cmNodeOf(id string) *cmNode {
	n := s.cm.nodes[id]
	if n == nil {
		n = &cmNode{applied: map[string]string{}, runs: map[string]int{}, dryRuns: map[string]int{}, agents: map[string]string{}}
		s.cm.nodes[id] = n
	}
	return n
}

func invalidParam(format string, args ...any) error {
	return apiError("InvalidParameters", format, args...)
}

// checkSource validates SourceType and SourceInfo as aws:downloadContent
// would parse them.
func checkSource(p map[string][]string, allowed []string) error {
	st := first(p["SourceType"])
	if st == "" {
		st = "S3"
	}
	if !slices.Contains(allowed, st) {
		return invalidParam("Parameter \"SourceType\" must be one of %s, not %q.", strings.Join(allowed, ", "), st)
	}
	var info map[string]any
	if err := json.Unmarshal([]byte(first(p["SourceInfo"])), &info); err != nil {
		return invalidParam("Parameter \"SourceInfo\" is not a JSON object: %v", err)
	}
	for k := range info {
		if !slices.Contains(sourceKeys[st], k) {
			return invalidParam("SourceInfo for source type %s has unknown key %q.", st, k)
		}
	}
	if v, _ := info[sourceRequired[st]].(string); v == "" {
		return invalidParam("SourceInfo for source type %s needs %q.", st, sourceRequired[st])
	}
	return nil
}

func isBool(v string) bool {
	return v == "" || v == "True" || v == "False" || v == "true" || v == "false"
}

func unset(v string) bool { return v == "" || v == "-" }

func checkChefParams(p map[string][]string) error {
	if err := checkSource(p, []string{"Git", "GitHub", "HTTP", "S3"}); err != nil {
		return err
	}
	for _, r := range strings.Split(first(p["RunList"]), ",") {
		if !(strings.HasPrefix(r, "recipe[") || strings.HasPrefix(r, "role[")) || !strings.HasSuffix(r, "]") {
			return invalidParam("Parameter \"RunList\" must be recipe[cookbook::recipe] entries separated by commas without spaces, got %q.", r)
		}
	}
	switch v := first(p["ChefClientVersion"]); v {
	case "", "None", "11", "12", "13", "14", "15", "16", "17", "18":
	default:
		return invalidParam("Parameter \"ChefClientVersion\" must be 11 to 18 or None, not %q.", v)
	}
	if !isBool(first(p["WhyRun"])) {
		return invalidParam("Parameter \"WhyRun\" must be True or False.")
	}
	if c := first(p["JsonAttributesContent"]); !unset(c) && !json.Valid([]byte(c)) {
		return invalidParam("Parameter \"JsonAttributesContent\" is not valid JSON.")
	}
	switch v := first(p["ComplianceSeverity"]); v {
	case "", "Critical", "High", "Medium", "Low", "Informational", "Unspecified", "None":
	default:
		return invalidParam("Parameter \"ComplianceSeverity\" has an invalid value %q.", v)
	}
	if v := first(p["ChefExecutionTimeout"]); v != "" {
		if n, err := strconv.Atoi(v); err != nil || n < 1 || n > 172800 {
			return invalidParam("Parameter \"ChefExecutionTimeout\" must be a number of seconds from 1 to 172800.")
		}
	}
	return nil
}

func checkAnsibleParams(p map[string][]string) error {
	if err := checkSource(p, []string{"GitHub", "S3"}); err != nil {
		return err
	}
	if !isBool(first(p["InstallDependencies"])) || !isBool(first(p["Check"])) {
		return invalidParam("Parameters \"InstallDependencies\" and \"Check\" must be True or False.")
	}
	switch v := first(p["Verbose"]); v {
	case "", "-v", "-vv", "-vvv", "-vvvv":
	default:
		return invalidParam("Parameter \"Verbose\" must be -v, -vv, -vvv or -vvvv, not %q.", v)
	}
	return nil
}

func truthy(v string) bool { return v == "True" || v == "true" }

// digest summarizes a configuration (lock held or not: pure).
func digest(parts ...string) string {
	return strconv.FormatUint(mix64(hashString(strings.Join(parts, "\x00"))), 16)
}

// converge decides one run (lock held): how many resources change, whether
// it fails, and the state change on completion.
func (s *Sim) converge(r DocumentRun, tool, want string, runList []string, dry bool) (changes int, failed bool, res DocumentResult) {
	n := s.cmNodeOf(r.InstanceID)
	res.Duration = s.drawRaw(r.Rand, s.cm.opts.Run)
	if n.applied[tool] != want {
		changes = 1 + r.Rand.IntN(12)
	}
	if dry {
		res.done = func(time.Time, *instance) { n.dryRuns[tool]++ }
		return changes, false, res
	}
	failed = r.Rand.Float64() < s.cm.opts.FailureRate
	if s.cm.script != nil && s.cm.script(ConfigRun{Tool: tool, InstanceID: r.InstanceID, RunList: runList}) {
		failed = true
	}
	if !failed {
		res.done = func(time.Time, *instance) {
			n.applied[tool] = want
			if changes > 0 {
				n.runs[tool]++
			}
		}
	}
	return changes, failed, res
}

func (s *Sim) runChef(r DocumentRun) DocumentResult {
	p := r.Parameters
	runList := strings.Split(first(p["RunList"]), ",")
	want := digest(first(p["SourceType"]), first(p["SourceInfo"]), first(p["RunList"]), first(p["JsonAttributesContent"]), first(p["JsonAttributesSources"]))
	dry := truthy(first(p["WhyRun"]))
	changes, failed, res := s.converge(r, "chef", want, runList, dry)
	total := changes + 5 + r.Rand.IntN(20)
	switch {
	case dry:
		res.Stdout = fmt.Sprintf("Starting Chef Infra Client in why-run mode\nChef Infra Client finished, %d/%d resources would have been updated\n", changes, total)
	case failed:
		res.ExitCode = 1
		res.Stdout = fmt.Sprintf("Starting Chef Infra Client\nRunning handlers:\n[%s] ERROR: Running exception handlers\n", r.InstanceID)
		res.Stderr = fmt.Sprintf("Chef Infra Client failed. %d resources updated\n", changes/2)
	default:
		res.Stdout = fmt.Sprintf("Starting Chef Infra Client\nChef Infra Client finished, %d/%d resources updated\n", changes, total)
	}
	return res
}

func (s *Sim) runAnsible(r DocumentRun) DocumentResult {
	p := r.Parameters
	play := first(p["PlaybookFile"])
	want := digest(first(p["SourceType"]), first(p["SourceInfo"]), play, first(p["ExtraVariables"]))
	dry := truthy(first(p["Check"]))
	changes, failed, res := s.converge(r, "ansible", want, []string{play}, dry)
	ok := changes + 3 + r.Rand.IntN(10)
	f := 0
	if failed {
		f = 1
		res.ExitCode = 2 // ansible-playbook: one or more hosts failed
		res.Stderr = "fatal: [localhost]: FAILED! => {\"changed\": false, \"msg\": \"simulated failure\"}\n"
	}
	res.Stdout = fmt.Sprintf("PLAY [all] ********\nPLAY RECAP ********\nlocalhost : ok=%d changed=%d unreachable=0 failed=%d skipped=0\n", ok, changes, f)
	return res
}

// runConfigShell handles Puppet and bootstrap scripts sent through
// AWS-RunShellScript (lock held); ok is false for other scripts.
func (s *Sim) runConfigShell(r DocumentRun) (DocumentResult, bool) {
	cmds := r.Parameters["commands"]
	script := strings.Join(cmds, "\n")
	switch {
	case strings.Contains(script, BootstrapMarker):
		return s.runBootstrap(r, script), true
	case strings.Contains(script, PuppetMarker):
		return s.runPuppet(r, script), true
	}
	return DocumentResult{}, false
}

func markerField(script, marker, key string) string {
	for _, line := range strings.Split(script, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), marker) {
			continue
		}
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, key+"="); ok {
				return v
			}
		}
	}
	return ""
}

func (s *Sim) runBootstrap(r DocumentRun, script string) DocumentResult {
	tool, server := markerField(script, BootstrapMarker, "tool"), markerField(script, BootstrapMarker, "server")
	n := s.cmNodeOf(r.InstanceID)
	if n.agents[tool] == server && server != "" {
		return DocumentResult{Duration: s.drawRaw(r.Rand, s.opts.Latency.SSM.Shell),
			Stdout: fmt.Sprintf("%s already installed and registered with %s; nothing to do\n", tool, server)}
	}
	res := DocumentResult{Duration: s.drawRaw(r.Rand, s.cm.opts.Bootstrap)}
	if s.cm.script != nil && s.cm.script(ConfigRun{Tool: tool + "-bootstrap", InstanceID: r.InstanceID}) {
		res.ExitCode = 1
		res.Stderr = fmt.Sprintf("could not register %s with %s\n", tool, server)
		return res
	}
	res.Stdout = fmt.Sprintf("installed %s and registered with %s\n", tool, server)
	res.done = func(time.Time, *instance) { n.agents[tool] = server }
	return res
}

func (s *Sim) runPuppet(r DocumentRun, script string) DocumentResult {
	dry := strings.Contains(script, " --noop")
	want := digest(strings.ReplaceAll(script, " --noop", ""))
	var cmdLine []string
	for _, l := range strings.Split(script, "\n") {
		if strings.Contains(l, "puppet apply") || strings.Contains(l, "puppet agent") {
			cmdLine = append(cmdLine, strings.TrimSpace(l))
		}
	}
	if strings.Contains(script, "puppet agent") && s.cmNodeOf(r.InstanceID).agents["puppet"] == "" {
		return DocumentResult{Duration: s.drawRaw(r.Rand, s.opts.Latency.SSM.Shell), ExitCode: 1,
			Stdout: PuppetExitMarker + "1\n", Stderr: "puppet: command not found (bootstrap the puppet agent first)\n"}
	}
	changes, failed, res := s.converge(r, "puppet", want, cmdLine, dry)
	code := 0
	switch {
	case failed && changes > 0 && r.Rand.IntN(2) == 0:
		code = 6
	case failed:
		code = 4
	case changes > 0:
		code = 2
	}
	res.Stdout = fmt.Sprintf("%s%d\nNotice: Applied catalog in %.2f seconds\n", PuppetExitMarker, code, res.Duration.Seconds())
	if code == 4 || code == 6 {
		res.ExitCode = code
		res.Stderr = "Error: /Stage[main]/Main/Service[app]: Could not evaluate: simulated failure\n"
	}
	return res
}
