package dev.hybridinference.testkit.sagemaker;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import software.amazon.eventstream.HeaderValue;
import software.amazon.eventstream.Message;

/** The event-stream framing against the published test vectors and the AWS library's decoder. */
class EventStreamFramesTest {
    private static final HexFormat HEX = HexFormat.of();

    @Test
    void frameWithoutHeadersMatchesTheVector() {
        byte[] frame = EventStreamFrames.encode(Map.of(), "{\"foo\": \"bar\"}".getBytes(StandardCharsets.UTF_8));

        assertThat(HEX.formatHex(frame))
                .isEqualTo("0000001e" + "00000000" + "baf2f68a" + "7b22666f6f223a2022626172227d" + "ae7258e4");
    }

    @Test
    void payloadPartMatchesTheVector() {
        byte[] frame = EventStreamFrames.payloadPart("hi".getBytes(StandardCharsets.UTF_8));

        String hex = HEX.formatHex(frame);
        assertThat(frame).hasSize(107);
        assertThat(hex)
                .startsWith("0000006b" + "00000059" + "99777065" + "0b" + "3a6576656e742d74797065" + "07" + "000b"
                        + "5061796c6f616450617274")
                .endsWith("6869" + "f0e10a16");
    }

    @Test
    void headersKeepTheirOrderAndRoundTrip() {
        Map<String, String> headers = new LinkedHashMap<>();
        headers.put("z-last-name-first", "1");
        headers.put(":message-type", "event");
        headers.put("é", "ünïcode");
        byte[] one = EventStreamFrames.encode(headers, new byte[] {0, 1, 2, (byte) 0xFF});
        byte[] two =
                EventStreamFrames.exception("ModelStreamError", "{\"Message\":\"m\"}".getBytes(StandardCharsets.UTF_8));
        byte[] three = EventStreamFrames.error("Boom", "it broke");
        ByteArrayOutputStream all = new ByteArrayOutputStream();
        all.writeBytes(one);
        all.writeBytes(two);
        all.writeBytes(three);

        List<EventStreamFrames.Frame> frames = EventStreamFrames.decodeAll(all.toByteArray());

        assertThat(frames).hasSize(3);
        assertThat(frames.get(0).headers().keySet()).containsExactly("z-last-name-first", ":message-type", "é");
        assertThat(frames.get(0).header("é")).isEqualTo("ünïcode");
        assertThat(frames.get(0).payload()).containsExactly(0, 1, 2, (byte) 0xFF);
        assertThat(frames.get(1).headers())
                .containsEntry(":message-type", "exception")
                .containsEntry(":exception-type", "ModelStreamError")
                .containsEntry(":content-type", "application/json");
        assertThat(frames.get(1).payloadUtf8()).isEqualTo("{\"Message\":\"m\"}");
        assertThat(frames.get(2).headers())
                .containsEntry(":message-type", "error")
                .containsEntry(":error-code", "Boom")
                .containsEntry(":error-message", "it broke");
    }

    @Test
    void theAwsDecoderReadsOurFramesAndWeReadItsFrames() {
        byte[] ours = EventStreamFrames.payloadPart("data: {\"x\":1}\n\n".getBytes(StandardCharsets.UTF_8));
        Message decoded = Message.decode(ByteBuffer.wrap(ours));
        assertThat(decoded.getHeaders().get(":event-type").getString()).isEqualTo("PayloadPart");
        assertThat(new String(decoded.getPayload(), StandardCharsets.UTF_8)).isEqualTo("data: {\"x\":1}\n\n");

        Map<String, HeaderValue> headers = new LinkedHashMap<>();
        headers.put("s", HeaderValue.fromString("text"));
        headers.put("i", HeaderValue.fromInteger(-7));
        headers.put("b", HeaderValue.fromBoolean(true));
        headers.put("l", HeaderValue.fromLong(1L << 40));
        ByteBuffer theirs = new Message(headers, "p".getBytes(StandardCharsets.UTF_8)).toByteBuffer();
        byte[] raw = new byte[theirs.remaining()];
        theirs.get(raw);

        EventStreamFrames.Frame frame = EventStreamFrames.decodeAll(raw).get(0);
        assertThat(frame.headers())
                .containsEntry("s", "text")
                .containsEntry("i", "-7")
                .containsEntry("b", "true")
                .containsEntry("l", Long.toString(1L << 40));
        assertThat(frame.payloadUtf8()).isEqualTo("p");
    }

    @Test
    void decoderRejectsBadCrcsAndTruncation() {
        byte[] frame = EventStreamFrames.payloadPart("hello".getBytes(StandardCharsets.UTF_8));

        byte[] badMessageCrc = frame.clone();
        badMessageCrc[badMessageCrc.length - 1] ^= 1;
        assertThatThrownBy(() -> EventStreamFrames.decodeAll(badMessageCrc))
                .isInstanceOf(IllegalArgumentException.class)
                .hasMessageContaining("message CRC");

        byte[] badPayload = frame.clone();
        badPayload[badPayload.length - 6] ^= 1;
        assertThatThrownBy(() -> EventStreamFrames.decodeAll(badPayload)).hasMessageContaining("message CRC");

        byte[] badPrelude = frame.clone();
        badPrelude[3] ^= 1;
        assertThatThrownBy(() -> EventStreamFrames.decodeAll(badPrelude)).hasMessageContaining("prelude CRC");

        byte[] truncated = java.util.Arrays.copyOf(frame, frame.length - 1);
        assertThatThrownBy(() -> EventStreamFrames.decodeAll(truncated)).hasMessageContaining("truncated");
    }
}
