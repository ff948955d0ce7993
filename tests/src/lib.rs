//! Test support for tests against real Open vSwitch: private sandboxes and tool wrappers.
