//! Boot-test harness (see README).
