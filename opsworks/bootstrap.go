package opsworks

import (
	"context"
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"

	"github.com/ec2ops/ec2ops"
	"github.com/ec2ops/ec2ops/internal/awsid"
	"github.com/ec2ops/ec2ops/patching"
)

// Bootstrap installs and registers a configuration agent (chef-client
// against a Chef Infra Server, or puppet-agent against a Puppet server) on
// instances through AWS-RunShellScript: the "agent plus configuration
// server" pattern of OpsWorks for Chef Automate and Puppet Enterprise. The
// script is idempotent: it first checks whether the agent is installed and
// registered with Server, and then does nothing.
type Bootstrap struct {
	// Tool is "chef" or "puppet".
	Tool string
	// Server is the Chef server URL (https://chef.example.com/organizations/ORG)
	// or the Puppet server host (puppet.example.com[:8140]).
	Server string
	// Version is the major version to install (Chef "18", Puppet "8").
	// Default 18 and 8.
	Version string
	// ValidationClientName is Chef's validator client (default
	// "ORG-validator" is common; required for Chef).
	ValidationClientName string
	// SecretParameter names an SSM SecureString parameter the instance
	// reads (aws ssm get-parameter --with-decryption, with its instance
	// profile) for the Chef validation key or the Puppet autosign challenge
	// password. Recommended: the secret never leaves the account's
	// parameter store and is not in the command's parameters.
	SecretParameter string
	// Secret is the validation key or challenge password itself, when no
	// parameter holds it. It is sent as a sensitive command parameter:
	// never logged, put in events or errors by this library, but visible
	// in the SSM command history to whoever can read it (ssm:ListCommands).
	Secret string
}

var (
	reChefServer = regexp.MustCompile(`^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/organizations/[a-z0-9_-]+)?/?$`)
	reParamName  = regexp.MustCompile(`^/?[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$`)
	reClientName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,255}$`)
	reMajor      = regexp.MustCompile(`^[0-9]{1,2}$`)
)

func (b *Bootstrap) validate() error {
	switch b.Tool {
	case "chef":
		if !reChefServer.MatchString(b.Server) {
			return ec2ops.InvalidInput("Bootstrap.Server", b.Server, "is not a Chef server URL", "e.g. https://chef.example.com/organizations/acme")
		}
		if !reClientName.MatchString(b.ValidationClientName) {
			return ec2ops.InvalidInput("Bootstrap.ValidationClientName", b.ValidationClientName, "is empty or has unsafe characters", `e.g. "acme-validator"`)
		}
	case "puppet":
		if !reHost.MatchString(b.Server) {
			return ec2ops.InvalidInput("Bootstrap.Server", b.Server, "is not a Puppet server host", "e.g. puppet.example.com")
		}
	default:
		return ec2ops.InvalidInput("Bootstrap.Tool", b.Tool, `is not "chef" or "puppet"`, "choose the agent to install")
	}
	if b.Version != "" && !reMajor.MatchString(b.Version) {
		return ec2ops.InvalidInput("Bootstrap.Version", b.Version, "is not a major version", `e.g. "18" (Chef) or "8" (Puppet)`)
	}
	if b.SecretParameter != "" && b.Secret != "" {
		return ec2ops.InvalidInput("Bootstrap.Secret", "", "both Secret and SecretParameter are set", "keep SecretParameter (recommended) and drop Secret")
	}
	if b.SecretParameter != "" && !reParamName.MatchString(b.SecretParameter) {
		return ec2ops.InvalidInput("Bootstrap.SecretParameter", b.SecretParameter, "is not a parameter name", "e.g. /chef/validator.pem")
	}
	if b.Tool == "chef" && b.SecretParameter == "" && b.Secret == "" {
		return ec2ops.InvalidInput("Bootstrap.SecretParameter", "", "Chef needs the validation key", "store it as a SecureString parameter and name it here")
	}
	return nil
}

// secretLine writes the secret to path (root-only) on the instance.
func (b *Bootstrap) secretLine(path string) string {
	if b.SecretParameter != "" {
		return fmt.Sprintf("aws ssm get-parameter --name '%s' --with-decryption --query Parameter.Value --output text > %s", b.SecretParameter, path)
	}
	return fmt.Sprintf("echo '%s' | base64 -d > %s", base64.StdEncoding.EncodeToString([]byte(b.Secret)), path)
}

// Script returns the bootstrap script's lines. Every value in it was
// validated against a strict pattern (or base64-encoded), so nothing the
// caller passes is interpreted by the shell.
func (b *Bootstrap) Script() ([]string, error) {
	if err := b.validate(); err != nil {
		return nil, err
	}
	if b.Tool == "chef" {
		v := cond(b.Version != "", b.Version, "18")
		return []string{
			"#!/bin/bash",
			fmt.Sprintf("%s tool=chef server=%s", bootstrapMarker, b.Server),
			"set -eu",
			fmt.Sprintf("if command -v chef-client >/dev/null 2>&1 && [ -f /etc/chef/client.pem ] && grep -qF \"chef_server_url '%s'\" /etc/chef/client.rb 2>/dev/null; then", b.Server),
			fmt.Sprintf("  echo 'chef-client already installed and registered with %s; nothing to do'; exit 0", b.Server),
			"fi",
			fmt.Sprintf("command -v chef-client >/dev/null 2>&1 || curl -fsSL https://omnitruck.chef.io/install.sh | bash -s -- -P chef -v %s", v),
			"mkdir -p /etc/chef && chmod 700 /etc/chef",
			"umask 077",
			b.secretLine("/etc/chef/validation.pem"),
			"cat > /etc/chef/client.rb <<'EOF'",
			fmt.Sprintf("chef_server_url '%s'", b.Server),
			fmt.Sprintf("validation_client_name '%s'", b.ValidationClientName),
			"validation_key '/etc/chef/validation.pem'",
			"EOF",
			"chef-client --once --chef-license accept",
			"rm -f /etc/chef/validation.pem",
			fmt.Sprintf("echo 'installed chef-client and registered with %s'", b.Server),
		}, nil
	}
	v := cond(b.Version != "", b.Version, "8")
	lines := []string{
		"#!/bin/bash",
		fmt.Sprintf("%s tool=puppet server=%s", bootstrapMarker, b.Server),
		"set -u",
		"export PATH=/opt/puppetlabs/bin:$PATH",
		fmt.Sprintf("if command -v puppet >/dev/null 2>&1 && [ \"$(puppet config print server --section agent)\" = '%s' ] && [ -f \"$(puppet config print hostcert)\" ]; then", b.Server),
		fmt.Sprintf("  echo 'puppet-agent already installed and registered with %s; nothing to do'; exit 0", b.Server),
		"fi",
		"if ! command -v puppet >/dev/null 2>&1; then",
		fmt.Sprintf("  if command -v dnf >/dev/null 2>&1; then rpm -Uvh https://yum.puppet.com/puppet%s-release-el-$(rpm -E %%rhel).noarch.rpm && dnf install -y puppet-agent;", v),
		fmt.Sprintf("  else . /etc/os-release && curl -fsSLo /tmp/puppet.deb https://apt.puppet.com/puppet%s-release-${VERSION_CODENAME}.deb && dpkg -i /tmp/puppet.deb && apt-get update && apt-get install -y puppet-agent; fi", v),
		"fi",
		fmt.Sprintf("puppet config set server '%s' --section agent", b.Server),
	}
	if b.SecretParameter != "" || b.Secret != "" {
		lines = append(lines,
			"umask 077",
			b.secretLine("/tmp/ec2ops-challenge"),
			`printf 'custom_attributes:\n  1.2.840.113549.1.9.7: "%s"\n' "$(cat /tmp/ec2ops-challenge)" > "$(puppet config print csr_attributes)"`,
			"rm -f /tmp/ec2ops-challenge")
	}
	lines = append(lines,
		"puppet agent --test --waitforcert 60 --detailed-exitcodes; rc=$?",
		"case $rc in 0|2) ;; *) echo \"puppet agent registration failed ($rc)\" >&2; exit $rc ;; esac",
		fmt.Sprintf("echo 'installed puppet-agent and registered with %s'", b.Server))
	return lines, nil
}

// bootstrapMarker tags bootstrap scripts (the simulator recognises it).
const bootstrapMarker = "# ec2ops:bootstrap"

// BootstrapAgents runs the bootstrap script on instanceIDs through the
// runner (rate controls, batches of 50) and returns the per-instance
// results; a *patching.CommandError names the instances that failed. The
// secret, when given inline, is a sensitive parameter: never logged, in
// events or in error strings.
func (c *Configurator) BootstrapAgents(ctx context.Context, b Bootstrap, instanceIDs []string) (*patching.Result, error) {
	lines, err := b.Script()
	if err != nil {
		return nil, err
	}
	if len(instanceIDs) == 0 {
		return nil, ec2ops.InvalidInput("instanceIDs", "", "is empty", "list the instances to bootstrap")
	}
	for _, id := range instanceIDs {
		if !awsid.Instance(id) {
			return nil, ec2ops.InvalidInput("instanceIDs", id, "is not an instance ID", "use IDs like i-0123456789abcdef0")
		}
	}
	cmd := patching.Command{DocumentName: patching.DocRunShellScript, InstanceIDs: instanceIDs,
		Parameters: map[string][]string{"commands": lines}, MaxConcurrency: c.opts.MaxConcurrency, MaxErrors: "100%",
		Comment: "ec2ops opsworks bootstrap " + b.Tool}
	if b.Secret != "" {
		cmd.Sensitive = []string{"commands"}
	}
	res, err := c.run.Run(ctx, cmd)
	if err != nil && b.Secret != "" {
		enc := base64.StdEncoding.EncodeToString([]byte(b.Secret))
		err = &scrubbedError{msg: strings.ReplaceAll(scrub(err.Error(), []string{b.Secret}), enc, sensitiveMark), err: err}
	}
	return res, err
}

// scrubbedError hides secrets in the message and keeps the chain.
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }
