#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| ringcache::fuzzing::check_connection(data));
