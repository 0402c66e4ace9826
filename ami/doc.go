// Package ami owns every AMI strategy: which image to use (Resolver), how it
// is built (Baker: from an instance, or from a base image plus layers, the
// Aminator/Packer flow), where it goes (copy to Regions, share with accounts
// and organizations, never public), when it dies (Retention with in-use
// protection: an image that an instance, a launch template version or an Auto
// Scaling group references is never deregistered), and how much to bake at
// all (the Balancer between a full AMI, long to build and fast to boot, and an
// OS-only AMI, nothing to build and long to boot with user data).
package ami
