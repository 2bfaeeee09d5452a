//! Ferry patch tests: the server may skip the HelloVerifyRequest cookie exchange.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use shared::TransportProtocol;

use crate::config::{ClientAuthType, ConfigBuilder, ExtendedMasterSecretType, HandshakeConfig};
use crate::crypto::Certificate;
use crate::endpoint::{Endpoint, EndpointEvent};

fn config(is_client: bool, skip_hello_verify: bool) -> Arc<HandshakeConfig> {
    let provider = crypto::default_provider().unwrap();
    let cert = Certificate::generate_self_signed(vec!["ferry".to_owned()], provider.crypto())
        .unwrap();
    let mut cfg = ConfigBuilder::default()
        .with_crypto_provider(provider)
        .with_certificates(vec![cert])
        .with_client_auth(ClientAuthType::RequireAnyClientCert)
        .with_insecure_skip_verify(true)
        .with_extended_master_secret(ExtendedMasterSecretType::Require)
        .build(is_client, None)
        .unwrap();
    cfg.skip_hello_verify = skip_hello_verify;
    Arc::new(cfg)
}

/// Runs a handshake over a lossless link and returns how many round trips (client flight
/// out, server flight back) the client needed, and whether a HelloVerifyRequest was sent.
fn handshake(skip_hello_verify: bool) -> (usize, bool) {
    let ca: SocketAddr = "127.0.0.1:5000".parse().unwrap();
    let sa: SocketAddr = "127.0.0.1:5001".parse().unwrap();
    let now = Instant::now();
    let mut client = Endpoint::new(ca, TransportProtocol::UDP, None);
    let mut server = Endpoint::new(
        sa,
        TransportProtocol::UDP,
        Some(config(false, skip_hello_verify)),
    );
    client
        .connect(now, sa, config(true, false), None)
        .unwrap();
    let (mut client_done, mut server_done, mut hello_verify) = (false, false, false);
    for round_trip in 1..=10 {
        while let Some(t) = client.poll_transmit() {
            for e in server.read(now, ca, None, t.message).unwrap() {
                server_done |= matches!(e, EndpointEvent::HandshakeComplete);
            }
        }
        while let Some(t) = server.poll_transmit() {
            // Handshake record (22), handshake type at byte 13: 3 = HelloVerifyRequest.
            hello_verify |= t.message.len() > 13 && t.message[0] == 22 && t.message[13] == 3;
            for e in client.read(now, sa, None, t.message).unwrap() {
                client_done |= matches!(e, EndpointEvent::HandshakeComplete);
            }
        }
        if client_done && server_done {
            let client_state = client.get_connection_state(sa).unwrap();
            let server_state = server.get_connection_state(ca).unwrap();
            assert_eq!(client_state.peer_certificates.len(), 1);
            assert_eq!(server_state.peer_certificates.len(), 1);
            return (round_trip, hello_verify);
        }
    }
    panic!("handshake did not complete in 10 round trips");
}

#[test]
fn upstream_server_runs_the_cookie_exchange() {
    assert_eq!(handshake(false), (3, true));
}

#[test]
fn skipping_hello_verify_saves_one_round_trip() {
    assert_eq!(handshake(true), (2, false));
}

#[test]
fn the_process_wide_switch_reaches_new_configs() {
    crate::config::set_skip_hello_verify(true);
    let built = ConfigBuilder::default()
        .with_crypto_provider(crypto::default_provider().unwrap())
        .with_certificates(vec![
            Certificate::generate_self_signed(
                vec!["ferry".to_owned()],
                crypto::default_provider().unwrap().crypto(),
            )
            .unwrap(),
        ])
        .build(false, None)
        .unwrap();
    crate::config::set_skip_hello_verify(false);
    assert!(built.skip_hello_verify);
}
