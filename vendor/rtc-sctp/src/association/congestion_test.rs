//! Ferry patch: the congestion controller as the association drives it (see
//! `congestion/` and the repository's vendor/README.md).
use super::congestion::CongestionControlKind;
use super::*;

fn established(kind: CongestionControlKind) -> Association {
    let mut a = create_association(TransportConfig::default().with_congestion_control(kind));
    a.control_queue.clear();
    a.timers.stop(Timer::T1Init);
    a.set_state(AssociationState::Established);
    a.rwnd = 1 << 24;
    a.ssthresh = 1 << 24;
    a.rto_mgr.set_rto(1000, true);
    a
}

/// Sends the initial window, acknowledges it 50 ms later, and returns what the next
/// `gather_outbound` at that instant sends.
fn after_first_ack(a: &mut Association, now: Instant) -> Result<(Instant, Vec<ChunkPayloadData>)> {
    let ppi = PayloadProtocolIdentifier::Binary;
    let mut stream = a.open_stream(1, ppi)?;
    for _ in 0..400 {
        stream.write_sctp(now, &Bytes::from(vec![7; 1000]), ppi)?;
    }
    let first = transmitted_data(&a.gather_outbound(now).0);
    assert_eq!(4, first.len(), "the initial window");
    let at = now + Duration::from_millis(50);
    a.handle_sack(
        &ChunkSelectiveAck {
            cumulative_tsn_ack: first.last().unwrap().tsn,
            advertised_receiver_window_credit: 1 << 24,
            ..Default::default()
        },
        at,
    )?;
    Ok((at, transmitted_data(&a.gather_outbound(at).0)))
}

#[test]
fn reno_is_the_default_and_sends_its_whole_window_at_once() -> Result<()> {
    assert_eq!(
        CongestionControlKind::Reno,
        TransportConfig::default().congestion_control()
    );
    let now = Instant::now();
    let mut a = established(CongestionControlKind::Reno);
    let (at, sent) = after_first_ack(&mut a, now)?;
    // Slow start doubled the window, and all of it left in one go.
    assert_eq!(8, sent.len());
    assert_eq!(None, a.pacing_wait);
    assert!(a.poll_timeout().unwrap() >= at + Duration::from_millis(250));
    Ok(())
}

#[test]
fn bbr_paces_new_data_and_asks_to_be_woken_for_the_rest() -> Result<()> {
    let now = Instant::now();
    let mut a = established(CongestionControlKind::Bbr);
    let (at, sent) = after_first_ack(&mut a, now)?;
    let rate =
        a.cc.pacing_rate()
            .expect("a pacing rate after the first sample");
    let burst = Pacer::burst(rate, a.mtu) as usize;
    let wire: usize = sent
        .iter()
        .map(|c| c.user_data.len() + DATA_CHUNK_HEADER_SIZE as usize)
        .sum();
    // cwnd would allow more than the pacer's bucket; only the bucket left.
    let allowed_by_cwnd = a.cwnd as usize / 1000;
    assert!(
        sent.len() < allowed_by_cwnd,
        "{} sent, cwnd allows {allowed_by_cwnd}",
        sent.len()
    );
    assert!(
        !sent.is_empty() && wire <= burst,
        "{wire} bytes > burst {burst}"
    );
    // The association asks to be woken when the next chunk may go, long before T3.
    let wake = a.poll_timeout().unwrap();
    assert!(
        wake > at && wake < at + Duration::from_millis(20),
        "{:?}",
        wake - at
    );
    assert!(transmitted_data(&a.gather_outbound(wake - Duration::from_micros(200)).0).is_empty());
    let more = transmitted_data(&a.gather_outbound(wake).0);
    assert!(!more.is_empty(), "nothing sent at the pacer's wakeup");
    Ok(())
}

#[test]
fn bbr_does_not_halve_its_window_on_a_single_loss() -> Result<()> {
    let now = Instant::now();
    for (kind, keeps) in [
        (CongestionControlKind::Bbr, true),
        (CongestionControlKind::Reno, false),
    ] {
        let mut a = established(kind);
        let _ = after_first_ack(&mut a, now)?;
        let mut w = Window {
            cwnd: a.cwnd,
            ssthresh: a.ssthresh,
        };
        let before = w.cwnd;
        a.cc.on_fast_retransmit_entry(&mut w, now, a.mtu);
        if keeps {
            assert_eq!(before, w.cwnd, "{kind:?}");
        } else {
            assert_eq!((before / 2).max(4 * a.mtu), w.cwnd, "{kind:?}");
        }
    }
    Ok(())
}
