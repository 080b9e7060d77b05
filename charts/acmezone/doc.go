// Package acmezone holds the Helm chart of acmezone and its tests.
package acmezone
