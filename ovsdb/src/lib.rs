//! RFC 7047 OVSDB client: framing, methods, typed values and a replica of monitored tables.
