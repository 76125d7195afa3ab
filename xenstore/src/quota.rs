//! Per-domain quotas. The defaults are the C xenstored's (`tools/xenstore/xenstored_core.c`,
//! Xen 4.17): a domain that exceeds one is refused with the error xenstored gives, and other
//! domains keep being answered. Privileged domains and dom0 have no node, watch or transaction
//! quotas.

/// The limits one xenstore instance enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quotas {
    /// Nodes a domain may own (`quota_nb_entry_per_domain`, 1000); beyond: `ENOSPC`.
    pub entries_per_domain: u32,
    /// Bytes of a node's value plus its children's names (`quota_max_entry_size`, 2048);
    /// beyond: `ENOSPC`.
    pub node_size: usize,
    /// Watches per domain (`quota_nb_watch_per_domain`, 128); beyond: `E2BIG`.
    pub watches_per_domain: u32,
    /// Open transactions per connection (`quota_max_transaction`, 10); beyond: `ENOSPC`.
    pub transactions_per_domain: u32,
    /// Entries of a permission list (`quota_nb_perms_per_node`, 5); beyond: `ENOSPC`.
    pub perms_per_node: usize,
    /// Nodes one transaction may touch (`quota_trans_nodes`, 1024); beyond: `ENOSPC`.
    pub nodes_per_transaction: usize,
    /// Replies waiting for the client to read them (`quota_req_outstanding`, 20); while
    /// that many wait, the connection's further requests stay unread on its ring.
    pub outstanding_requests: usize,
    /// Watch events waiting for the client (C xenstored drops events past its output
    /// limit too); beyond: the event is dropped and logged.
    pub queued_events: usize,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            entries_per_domain: 1000,
            node_size: 2048,
            watches_per_domain: 128,
            transactions_per_domain: 10,
            perms_per_node: 5,
            nodes_per_transaction: 1024,
            outstanding_requests: 20,
            queued_events: 256,
        }
    }
}
