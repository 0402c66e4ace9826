// Package opsworks brings the OpsWorks model (stacks, layers, lifecycle
// events, run lists, custom JSON) to Systems Manager after AWS retired
// OpsWorks Stacks, OpsWorks for Chef Automate and OpsWorks for Puppet
// Enterprise in 2024. Chef, Puppet and Ansible runs go through patching's
// CommandRunner; an importer reads stacks exported with the AWS CLI before
// the shutdown. It has no dependency on the retired API.
//
// # Why
//
// AWS OpsWorks for Puppet Enterprise ended on 2024-03-31, OpsWorks for Chef
// Automate on 2024-05-05 and OpsWorks Stacks on 2024-05-26 ("OpsWorks
// Stacks reached end of life on May 26, 2024 and has been disabled for
// both new and existing customers", OpsWorks user guide); the service was
// removed from the AWS SDKs. AWS points Stacks users to Systems Manager
// and its AWS-ApplyChefRecipes document. The model teams kept is an agent
// on every instance, a run list or a configuration server, and lifecycle
// events; this package keeps it.
//
// # Model
//
// A Stack has Layers; a Layer selects running instances by tags (Selector,
// DescribeInstances filters tag:NAME / tag-key) and has a run list per
// lifecycle Event: Setup, Configure, Deploy, Undeploy, Shutdown. Custom
// JSON is merged stack < layer < deployment by MergeAttributes: objects
// merge key by key, anything else is replaced whole, null removes a key.
// Stack.Sensitive names attribute paths holding secrets.
//
// A Configurator plans a Deployment (an event on some layers): Plan calls
// only ec2:DescribeInstances (one paginated call per layer), splits each
// layer's instances into waves with patching.Waves (default one wave, as
// OpsWorks ran an event on a layer at once; Canary and Waves for a
// gradual run) and builds each layer's command. Apply sends each wave as
// one patching.Command through the CommandRunner (batches of 50, rate
// controls, per-instance results, cancellation: see package patching) and
// stops after a wave once failures exceed FailureThreshold (default 0).
// Deployment.DryRun runs the tools' own dry runs: Chef why-run, Ansible
// check mode, Puppet --noop; nothing changes on the instances. Apply
// returns a *DeployError with every instance's Outcome unless all
// succeeded.
//
// # Backends
//
//   - Chef: AWS-ApplyChefRecipes, parameters SourceType (Git, GitHub, HTTP,
//     S3), SourceInfo (JSON, the keys of aws:downloadContent), RunList
//     ("recipe[cb::r],recipe[cb::r2]", no space after commas),
//     JsonAttributesContent (the merged custom JSON), JsonAttributesSources,
//     ChefClientVersion (11 to 18, or None), ChefClientArguments, WhyRun,
//     ComplianceSeverity, ComplianceType, ComplianceReportBucket,
//     ChefExecutionTimeout. Source: Systems Manager user guide, "Creating
//     associations that run Chef recipes" (Chef 11 through 18; Linux only;
//     Git, GitHub, HTTP or S3 sources). chef-client runs in local mode:
//     no Chef server, no data bags or search.
//   - Ansible: AWS-ApplyAnsiblePlaybooks, parameters SourceType (GitHub,
//     S3), SourceInfo, InstallDependencies, PlaybookFile (one playbook per
//     event; compose with import_playbook), ExtraVariables ("key=value"
//     pairs separated by spaces: flat attributes only, no spaces or
//     quotes), Check, Verbose (-v to -vvvv), TimeoutSeconds. Source: user
//     guide, "Creating associations that run Ansible playbooks".
//   - Puppet: AWS-RunShellScript running "puppet apply" (classes of the run
//     list) or "puppet agent --test" (against a server; the run list is
//     --tags) with --detailed-exitcodes: 0 no change, 2 changed, 4
//     failures, 6 changed with failures ("puppet agent" and "puppet apply"
//     man pages). The script prints "ec2ops-puppet-exitcode=N" first (the
//     plugin output keeps its first 2,500 characters) and exits 0 for 0
//     and 2, so changes are a success to Run Command, and N otherwise;
//     Outcome maps it back. Attributes become an external fact file.
//
// SourceInfo keys follow amazon-ssm-agent's aws:downloadContent: S3 path;
// GitHub owner, repository, path, getOptions, tokenInfo; Git repository,
// privateSSHKey, skipHostKeyChecking, username, password, getOptions;
// HTTP url, authMethod, username, password, allowInsecureDownload. Use
// "{{ssm-secure:NAME}}" references for tokens, keys and passwords; a
// literal one makes SourceInfo a sensitive parameter.
//
// # Agents and secrets
//
// BootstrapAgents installs and registers chef-client (Chef Infra Server)
// or puppet-agent (Puppet server) through AWS-RunShellScript: the "agent
// plus configuration server" pattern of OpsWorks for Chef Automate and
// Puppet Enterprise. The script checks first and does nothing when the
// agent is installed and registered with that server, so reruns are
// harmless. The validation key or autosign challenge is best read on the
// instance from a SecureString parameter (Bootstrap.SecretParameter); an
// inline Secret is a sensitive parameter. Sensitive parameters and
// attribute values are never logged, put in events, plans or error
// strings by this package (patching redacts its own); instance output is
// scrubbed of them. They remain visible in SSM's command history to whoever
// may read it, which is why references are preferred.
//
// # Lifecycle events
//
// SetupFunc (Setup then Deploy, waiting up to AgentWait for a new
// instance's SSM agent), ShutdownFunc and ConfigureFunc (Configure on every
// instance of the stack when one joins or leaves, as OpsWorks did) are
// func(ctx, instanceID) error values; LifecycleHooks packs them into a
// lifecycle.Hooks: BeforeInService runs Setup, Deploy and then Configure
// on the stack; BeforeTerminate runs Shutdown and then Configure on the
// others. A failing hook fails the replacement, which lifecycle rolls back.
//
// # Import
//
// Import reads the JSON of aws opsworks describe-stacks, describe-layers,
// describe-apps and describe-instances (shapes from the OpsWorks Stacks API
// reference) into a Stack: custom recipes per event, custom JSON (values
// OpsWorks returned as *****FILTERED***** become Sensitive paths to fill),
// the custom cookbook source (git -> Git with getOptions, s3 -> S3,
// archive -> HTTP), the Shutdown timeout, and each layer's EC2 instances.
// Layer selectors use the tags OpsWorks put on its EC2 instances
// (opsworks:stack, opsworks:layer:SHORTNAME). What does not carry over is
// listed in NotCarried with reasons: built-in layers and OpsWorks-owned
// (default) recipes, Chef 11 built-in cookbooks, Berkshelf, data bags and
// search, Subversion sources, apps (sources, SSL, data sources, secure
// environment variables), Windows and on-premises instances, load- and
// time-based scaling, packages, volumes, auto healing, Elastic IPs, ELB
// draining. Assumptions are listed in Notes; nothing is guessed silently.
// Malformed or hostile JSON (inputs over 16 MiB, deep nesting, wrong
// types) is an ec2ops.InputError, never a panic (FuzzImport).
//
// # IAM
//
// Policy: ssm:SendCommand, ssm:CancelCommand, ssm:ListCommands,
// ssm:ListCommandInvocations, ssm:GetCommandInvocation,
// ssm:DescribeInstanceInformation (patching's Runner) and
// ec2:DescribeInstances. Scope ssm:SendCommand to the document ARNs
// AWS-ApplyChefRecipes, AWS-ApplyAnsiblePlaybooks and AWS-RunShellScript
// and to tagged instances. The instance profile needs S3 read access to
// cookbook/playbook sources and ssm:GetParameter on the secret parameters.
// The package creates no AWS resources, so it tags none.
//
// # Trade-offs
//
// Chef and Ansible run masterless: the source is downloaded on every run,
// and there is no server-side search or reporting beyond SSM Compliance.
// Puppet agent mode and bootstrapped chef-client keep a configuration
// server, at the cost of running it. One layer's run list per instance
// per event: layers must select disjoint instances. Waves trade speed
// for blast radius; OpsWorks itself ran events on all instances at once.
//
// # Performance
//
// On the simulator (go test -run TestChefDryRunThenApply -v ./opsworks/),
// a why-run, a real run and a rerun of a Chef run list on a 12-instance
// layer take 5m50s of simulated time (runs take 20 s to 2 min each, plus
// agent delivery and polling) with 3 DescribeInstances, 3
// DescribeInstanceInformation, 3 SendCommand, 49 ListCommands and 25
// ListCommandInvocations calls.
package opsworks
