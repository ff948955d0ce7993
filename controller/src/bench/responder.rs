//! The trivial controller the load generator is calibrated against: it answers every PACKET_IN
//! at once with a FLOW_MOD and a PACKET_OUT (the shape of a learning switch's answer to a known
//! destination) and does nothing else. Whatever rate the generator reaches against it is the
//! generator's own ceiling on this machine.

use std::net::SocketAddr;

use bytes::BytesMut;
use ofproto::{
    Action, FlowMod, Hello, Instruction, Match, Message, MultipartRequest, MultipartRequestBody,
    OfMessage, OxmField, PacketOut, OFP_NO_BUFFER,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::switch::{split_message, SwitchError};

/// Flags of `strowger bench responder`.
#[derive(clap::Args, Debug, Clone)]
pub struct ResponderArgs {
    /// Where emulated switches connect.
    #[arg(long, default_value = "127.0.0.1:6653")]
    pub listen: SocketAddr,
    /// Answer with a PACKET_OUT only (no FLOW_MOD).
    #[arg(long)]
    pub no_flow_mod: bool,
}

/// The sans-IO core of one responder connection.
#[derive(Debug, Default)]
pub struct Responder {
    /// Skip the FLOW_MOD in answers.
    pub no_flow_mod: bool,
    /// PACKET_INs answered so far.
    pub answered: u64,
    next_xid: u32,
}

impl Responder {
    /// Emits the controller's opening: HELLO, FEATURES_REQUEST and a PORT_DESC request.
    pub fn start(&mut self, out: &mut BytesMut) {
        OfMessage::new(self.xid(), Message::Hello(Hello::of13())).emit(out);
        OfMessage::new(self.xid(), Message::FeaturesRequest).emit(out);
        OfMessage::new(
            self.xid(),
            Message::MultipartRequest(MultipartRequest {
                flags: 0,
                body: MultipartRequestBody::PortDesc,
            }),
        )
        .emit(out);
    }

    /// Handles one whole message from a switch.
    pub fn handle(&mut self, msg: &[u8], out: &mut BytesMut) -> Result<(), SwitchError> {
        let parsed = OfMessage::parse(msg)?;
        match parsed.body {
            Message::PacketIn(pi) => {
                let in_port = pi.match_.in_port().unwrap_or(ofproto::port_no::CONTROLLER);
                if !self.no_flow_mod {
                    let fm = FlowMod {
                        idle_timeout: 60,
                        priority: 1,
                        match_: Match::new().with(OxmField::InPort(in_port)),
                        instructions: vec![Instruction::ApplyActions(vec![Action::Output {
                            port: ofproto::port_no::FLOOD,
                            max_len: 0,
                        }])],
                        ..FlowMod::default()
                    };
                    OfMessage::new(self.xid(), Message::FlowMod(fm)).emit(out);
                }
                let po = PacketOut {
                    buffer_id: OFP_NO_BUFFER,
                    in_port,
                    actions: vec![Action::Output {
                        port: ofproto::port_no::FLOOD,
                        max_len: 0,
                    }],
                    data: pi.data,
                };
                OfMessage::new(self.xid(), Message::PacketOut(po)).emit(out);
                self.answered += 1;
            }
            Message::EchoRequest(data) => {
                OfMessage::new(parsed.xid, Message::EchoReply(data)).emit(out)
            }
            _ => {}
        }
        Ok(())
    }

    fn xid(&mut self) -> u32 {
        self.next_xid = self.next_xid.wrapping_add(1);
        self.next_xid
    }
}

/// Serves responder connections on `listener` until `shutdown` resolves.
pub async fn run(
    listener: TcpListener,
    no_flow_mod: bool,
    shutdown: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tokio::spawn(async move {
                        if let Err(e) = serve_connection(stream, no_flow_mod).await {
                            tracing::debug!(%peer, error = %e, "responder connection ended");
                        }
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
        }
    }
}

async fn serve_connection(mut stream: TcpStream, no_flow_mod: bool) -> anyhow::Result<()> {
    stream.set_nodelay(true)?;
    let mut core = Responder {
        no_flow_mod,
        ..Responder::default()
    };
    let mut rbuf = BytesMut::with_capacity(64 * 1024);
    let mut out = BytesMut::with_capacity(64 * 1024);
    core.start(&mut out);
    stream.write_all(&out).await?;
    out.clear();
    loop {
        if stream.read_buf(&mut rbuf).await? == 0 {
            return Ok(());
        }
        // Every answer to what one read brought is written with one syscall.
        while let Some(msg) = split_message(&mut rbuf)? {
            core.handle(&msg, &mut out)?;
        }
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
    }
}

/// `strowger bench responder`: serves until SIGINT.
pub async fn main(args: ResponderArgs) -> anyhow::Result<()> {
    let listener = TcpListener::bind(args.listen).await?;
    eprintln!("responder listening on {}", listener.local_addr()?);
    run(listener, args.no_flow_mod, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await;
    Ok(())
}
