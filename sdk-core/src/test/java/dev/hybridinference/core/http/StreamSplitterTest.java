package dev.hybridinference.core.http;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.hybridinference.core.http.StreamSplitter.Event;
import dev.hybridinference.core.http.StreamSplitter.Format;
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class StreamSplitterTest {
    /** Every feature at once: CRLF, CR and LF line ends, multi-byte characters, comments, both error shapes. */
    private static final String SSE = ": keep-alive\r\n\r\n"
            + "event: message\nid: 1\ndata: {\"a\":\"h\u00e9llo \u4e16\u754c \ud83d\ude00\"}\n\n"
            + "data:{\"b\":2}\r\n\r\n"
            + "data: one\rdata: two\r\r"
            + "retry: 10\n"
            + "error: {\"code\":500}\n\n"
            + "event: error\ndata: {\"message\":\"x\"}\n\n"
            + "event: message\r\ndata: \u00fcber\r\n\r\n"
            + "data: [DONE]\n\n";

    private static final List<Event> SSE_EVENTS = List.of(
            new Event("{\"a\":\"h\u00e9llo \u4e16\u754c \ud83d\ude00\"}", false),
            new Event("{\"b\":2}", false),
            new Event("one\ntwo", false),
            new Event("{\"code\":500}", true),
            new Event("{\"message\":\"x\"}", true),
            new Event("\u00fcber", false),
            new Event("[DONE]", false));

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    /** All events of {@code bytes} fed in pieces cut at {@code cuts} (sorted positions). */
    private static List<Event> split(Format format, byte[] bytes, long maxLine, int... cuts) {
        StreamSplitter s = new StreamSplitter(format, maxLine);
        List<Event> out = new ArrayList<>();
        int from = 0;
        for (int cut : cuts) {
            s.feed(bytes, from, cut - from);
            drain(s, out);
            from = cut;
        }
        s.feed(bytes, from, bytes.length - from);
        drain(s, out);
        s.finish();
        drain(s, out);
        return out;
    }

    private static void drain(StreamSplitter s, List<Event> out) {
        for (Event e; (e = s.next()) != null; ) {
            out.add(e);
        }
    }

    @Test
    void sseSplitAtEveryBytePositionYieldsTheSameEvents() {
        byte[] bytes = utf8(SSE);
        assertThat(split(Format.SSE, bytes, 1024)).containsExactlyElementsOf(SSE_EVENTS);
        for (int cut = 0; cut <= bytes.length; cut++) {
            assertThat(split(Format.SSE, bytes, 1024, cut)).as("cut at %d", cut).isEqualTo(SSE_EVENTS);
        }
    }

    @Test
    void sseFedOneByteAtATimeOrInRandomPiecesYieldsTheSameEvents() {
        byte[] bytes = utf8(SSE);
        int[] everyByte = new int[bytes.length - 1];
        for (int i = 0; i < everyByte.length; i++) {
            everyByte[i] = i + 1;
        }
        assertThat(split(Format.SSE, bytes, 1024, everyByte)).isEqualTo(SSE_EVENTS);
        Random random = new Random(42);
        for (int round = 0; round < 200; round++) {
            int[] cuts = random.ints(1 + random.nextInt(8), 0, bytes.length + 1)
                    .sorted()
                    .toArray();
            assertThat(split(Format.SSE, bytes, 1024, cuts)).as("cuts %s", cuts).isEqualTo(SSE_EVENTS);
        }
    }

    @Test
    void jsonLinesSplitAtEveryBytePositionYieldTheSameEvents() {
        String text = "{\"token\":{\"text\":\"\u00e9\"}}\r\n\n{\"token\":{\"text\":\"\ud83d\ude00\"}}\r"
                + "  \n{\"generated_text\":\"\u00e9\ud83d\ude00\"}";
        List<Event> expected = List.of(
                new Event("{\"token\":{\"text\":\"\u00e9\"}}", false),
                new Event("{\"token\":{\"text\":\"\ud83d\ude00\"}}", false),
                new Event("{\"generated_text\":\"\u00e9\ud83d\ude00\"}", false));
        byte[] bytes = utf8(text);
        for (int cut = 0; cut <= bytes.length; cut++) {
            assertThat(split(Format.JSON_LINES, bytes, 1024, cut))
                    .as("cut at %d", cut)
                    .isEqualTo(expected);
        }
    }

    @Test
    void autoTakesJsonLinesAndSseLinesAlike() {
        String text = "{\"a\":1}\ndata: {\"b\":2}\n\n[1]\n: comment\n";
        assertThat(split(Format.AUTO, utf8(text), 1024))
                .containsExactly(new Event("{\"a\":1}", false), new Event("{\"b\":2}", false), new Event("[1]", false));
    }

    @Test
    void dropsAnSseEventCutOffByTheEndOfInputButKeepsABareErrorLine() {
        assertThat(split(Format.SSE, utf8("data: whole\n\ndata: {\"cut"), 1024))
                .containsExactly(new Event("whole", false));
        assertThat(split(Format.SSE, utf8("data: whole\n\nerror: {\"code\":503}"), 1024))
                .containsExactly(new Event("whole", false), new Event("{\"code\":503}", true));
    }

    @Test
    void aCarriageReturnAtTheEndOfAChunkWaitsForTheNextByte() {
        StreamSplitter s = new StreamSplitter(Format.SSE, 1024);
        s.feed(utf8("data: a\r"), 0, 8);
        assertThat(s.next()).isNull();
        s.feed(utf8("\n\r\n"), 0, 3);
        assertThat(s.next()).isEqualTo(new Event("a", false));
        assertThat(s.next()).isNull();
    }

    @Test
    void refusesALineLongerThanTheLimitEvenWithoutANewline() {
        StreamSplitter endless = new StreamSplitter(Format.SSE, 64);
        byte[] x = utf8("x".repeat(40));
        endless.feed(x, 0, x.length);
        assertThat(endless.next()).isNull();
        endless.feed(x, 0, x.length);
        assertThatThrownBy(endless::next)
                .isInstanceOf(StreamSplitter.LineTooLongException.class)
                .hasMessageContaining("64 bytes");
        assertThatThrownBy(() -> split(Format.JSON_LINES, utf8("{\"a\":\"" + "y".repeat(100) + "\"}\n"), 64))
                .isInstanceOf(StreamSplitter.LineTooLongException.class);
        assertThatCode(() -> split(Format.SSE, utf8("data: " + "x".repeat(58) + "\n\n"), 64))
                .doesNotThrowAnyException();
    }

    @Test
    void eventsBeforeALongLineComeOutBeforeTheFailure() {
        StreamSplitter s = new StreamSplitter(Format.SSE, 64);
        byte[] b = utf8("data: ok\n\ndata: " + "z".repeat(200));
        s.feed(b, 0, b.length);
        assertThat(s.next()).isEqualTo(new Event("ok", false));
        assertThatThrownBy(s::next).isInstanceOf(StreamSplitter.LineTooLongException.class);
    }

    @Test
    void replacesInvalidUtf8() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(utf8("data: a"));
        out.write(0xFF);
        out.writeBytes(utf8("b\n\n"));
        byte[] bytes = out.toByteArray();
        for (int cut = 0; cut <= bytes.length; cut++) {
            assertThat(split(Format.SSE, bytes, 1024, cut)).containsExactly(new Event("a\uFFFDb", false));
        }
    }

    @Test
    void takesByteBuffersAndManyLinesAtOnce() {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 5000; i++) {
            sb.append("data: {\"i\":").append(i).append("}\n\n");
        }
        StreamSplitter s = new StreamSplitter(Format.SSE);
        s.feed(ByteBuffer.wrap(utf8(sb.toString())));
        List<Event> out = new ArrayList<>();
        drain(s, out);
        assertThat(out).hasSize(5000);
        assertThat(out.get(4999).data()).isEqualTo("{\"i\":4999}");
    }

    @Test
    void nothingCanBeFedAfterTheEnd() {
        StreamSplitter s = new StreamSplitter(Format.SSE);
        s.finish();
        assertThatThrownBy(() -> s.feed(new byte[1], 0, 1)).isInstanceOf(IllegalStateException.class);
    }
}
