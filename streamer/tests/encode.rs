//! The CPU encoders really encode: test frames through the same encoder fragments the
//! streamer uses, counted at an appsink. NVENC needs a GPU and is exercised on one.

use gstreamer::prelude::*;
use vdi_streamer::encoder::Encoder;

fn encode(encoder: Encoder, frames: u32) -> u32 {
    gstreamer::init().expect("init GStreamer");
    let description = format!(
        "videotestsrc num-buffers={frames} pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 ! videoconvert ! {} ! appsink name=sink sync=false",
        encoder.description(2000, 30)
    );
    let pipeline = gstreamer::parse::launch(&description)
        .expect("pipeline")
        .downcast::<gstreamer::Pipeline>()
        .expect("a pipeline");
    let sink = pipeline
        .by_name("sink")
        .expect("sink")
        .downcast::<gstreamer_app::AppSink>()
        .expect("appsink");
    pipeline.set_state(gstreamer::State::Playing).expect("play");
    let mut count = 0;
    while let Some(sample) = sink.try_pull_sample(gstreamer::ClockTime::from_seconds(10)) {
        assert!(sample.buffer().is_some_and(|b| b.size() > 0));
        count += 1;
    }
    pipeline.set_state(gstreamer::State::Null).expect("stop");
    count
}

#[test]
fn x264_encodes_every_frame() {
    assert_eq!(encode(Encoder::X264, 30), 30);
}

#[test]
fn vp8_encodes_every_frame() {
    assert_eq!(encode(Encoder::Vp8, 30), 30);
}

#[test]
fn the_capture_pipeline_parses_with_each_cpu_encoder() {
    use clap::Parser;
    gstreamer::init().expect("init GStreamer");
    let settings =
        vdi_streamer::settings::Settings::parse_from(["vdi-streamer", "--display", ":99"]);
    settings.validate().expect("defaults are valid");
    for encoder in [Encoder::X264, Encoder::Vp8] {
        let description = format!(
            "{} ! fakesink",
            vdi_streamer::capture_pipeline(&settings, encoder)
        );
        let pipeline =
            gstreamer::parse::launch(&description).unwrap_or_else(|e| panic!("{description}: {e}"));
        let bin = pipeline.downcast::<gstreamer::Bin>().expect("a bin");
        let names: Vec<String> = bin
            .iterate_elements()
            .into_iter()
            .flatten()
            .filter_map(|e| e.factory().map(|f| f.name().to_string()))
            .collect();
        assert!(
            names.contains(&"ximagesrc".to_owned())
                && names.contains(&encoder.element().to_owned()),
            "{names:?}"
        );
    }
}
