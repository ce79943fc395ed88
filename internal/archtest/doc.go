// Package archtest holds no code: its tests check that every package of
// the module imports only what docs/architecture.md allows it to, so the
// layout described there cannot drift from the code, and that every
// relative link in README.md and docs/ names a file and heading that exist.
package archtest
