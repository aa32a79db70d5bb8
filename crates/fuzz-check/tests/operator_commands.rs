//! Property test of the operator commands ringcache parses since issue 16
//! (`lru_crawler …`, `stats cachedump …`, `cache_memlimit …`): random lines built from
//! their words, numbers (negative, huge, garbage), class lists, spacing and `noreply`,
//! mixed with stores and gets, go through the text parser check and the connection
//! check (every split parses alike; no panic, bounded output, no stall).
//!
//! No sockets here, as in `replay.rs`: the checks drive the parser and the
//! engine-agnostic connection directly, so there is no engine to run twice.

use proptest::prelude::*;
use ringcache_fuzz_check::{check_connection, check_text};

fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u64..100).prop_map(|n| n.to_string()),
        Just("1000000".to_string()),
        Just("1000001".to_string()),
        Just("4294967296".to_string()),
        Just("-1".to_string()),
        Just("+7".to_string()),
        Just("abc".to_string()),
        Just("5x".to_string()),
        Just(String::new()),
    ]
}

fn class_list() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("all".to_string()),
        Just("hash".to_string()),
        Just(",".to_string()),
        prop::collection::vec(
            prop_oneof![
                (0u32..70).prop_map(|n| n.to_string()),
                Just(String::new()),
                Just("x".to_string())
            ],
            1..5
        )
        .prop_map(|ids| ids.join(",")),
    ]
}

/// One operator command line (without its line end).
fn operator_line() -> impl Strategy<Value = String> {
    let crawler = prop_oneof![
        Just("enable".to_string()),
        Just("disable".to_string()),
        Just("foo".to_string()),
        number().prop_map(|n| format!("sleep {n}")),
        number().prop_map(|n| format!("tocrawl {n}")),
        class_list().prop_map(|c| format!("crawl {c}")),
        class_list().prop_map(|c| format!("metadump {c}")),
        class_list().prop_map(|c| format!("mgdump {c}")),
    ];
    let line = prop_oneof![
        crawler.prop_map(|sub| format!("lru_crawler {sub}")),
        (number(), number()).prop_map(|(c, l)| format!("stats cachedump {c} {l}")),
        number().prop_map(|n| format!("cache_memlimit {n}")),
        Just("stats items".to_string()),
        Just("stats slabs".to_string()),
        (0u32..50, 0u32..3).prop_map(|(k, t)| format!("set k{k} 0 {t} 3\r\nabc")),
        (0u32..50).prop_map(|k| format!("get k{k}")),
    ];
    (line, any::<bool>(), any::<bool>(), 0usize..3).prop_map(|(line, noreply, extra, spaces)| {
        let mut line = line.replace(' ', &" ".repeat(spaces + 1));
        if extra {
            line.push_str(" extra");
        }
        if noreply {
            line.push_str(" noreply");
        }
        line
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn operator_command_lines_pass_the_text_and_connection_checks(
        lines in prop::collection::vec(operator_line(), 1..24),
        bare_newlines in any::<bool>(),
    ) {
        let end = if bare_newlines { "\n" } else { "\r\n" };
        let mut input = String::new();
        for line in &lines {
            input.push_str(line);
            input.push_str(end);
        }
        check_text(input.as_bytes());
        check_connection(input.as_bytes());
    }
}
