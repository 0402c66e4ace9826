// Package opsworks brings the OpsWorks model (stacks, layers, lifecycle
// events, run lists, custom JSON) to Systems Manager after AWS retired
// OpsWorks Stacks, OpsWorks for Chef Automate and OpsWorks for Puppet
// Enterprise in 2024. Chef, Puppet and Ansible runs go through patching's
// CommandRunner; an importer reads stacks exported with the AWS CLI before
// the shutdown. It has no dependency on the retired API.
package opsworks
