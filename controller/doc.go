// Package controller holds what acmezone-controller's parts share: the options that say which
// zone and name servers this installation serves, and the DNS records a user must add.
package controller
