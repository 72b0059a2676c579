package dev.hybridinference.core.internal.openai;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import okio.Buffer;
import org.junit.jupiter.api.Test;

class SseReaderTest {
    private static SseReader reader(String text) {
        return new SseReader(new Buffer().writeUtf8(text));
    }

    @Test
    void readsEventsSkippingCommentsAndOtherFields() throws Exception {
        SseReader r = reader(
                ": keep-alive\n\nevent: message\nid: 1\ndata: {\"a\":1}\n\ndata:{\"b\":2}\r\n\r\ndata: [DONE]\n\n");
        assertThat(r.next()).isEqualTo("{\"a\":1}");
        assertThat(r.next()).isEqualTo("{\"b\":2}");
        assertThat(r.next()).isEqualTo("[DONE]");
        assertThat(r.next()).isNull();
    }

    @Test
    void joinsMultiLineDataWithNewlines() throws Exception {
        assertThat(reader("data: one\ndata: two\n\n").next()).isEqualTo("one\ntwo");
    }

    @Test
    void dropsAnEventCutOffByTheEndOfInput() throws Exception {
        SseReader r = reader("data: whole\n\ndata: {\"cut");
        assertThat(r.next()).isEqualTo("whole");
        assertThat(r.next()).isNull();
    }

    @Test
    void recognisesBothErrorEventShapes() throws Exception {
        SseReader r = reader("data: {\"a\":1}\n\nerror: {\"code\":500}\n\nevent: error\ndata: {\"message\":\"x\"}\n\n"
                + "event: message\ndata: ok\n\n");
        assertThat(r.next()).isEqualTo("{\"a\":1}");
        assertThat(r.isError()).isFalse();
        assertThat(r.next()).isEqualTo("{\"code\":500}");
        assertThat(r.isError()).isTrue();
        assertThat(r.next()).isEqualTo("{\"message\":\"x\"}");
        assertThat(r.isError()).isTrue();
        assertThat(r.next()).isEqualTo("ok");
        assertThat(r.isError()).isFalse();
    }

    @Test
    void refusesALineLongerThanTheLimit() {
        SseReader r = new SseReader(new Buffer().writeUtf8("data: " + "x".repeat(100)), 64);
        assertThatThrownBy(r::next).isInstanceOf(SseReader.LineTooLongException.class);
        SseReader ok = new SseReader(new Buffer().writeUtf8("data: " + "x".repeat(50) + "\n\n"), 64);
        assertThatCode(ok::next).doesNotThrowAnyException();
    }

    @Test
    void replacesInvalidUtf8() throws Exception {
        SseReader r =
                new SseReader(new Buffer().writeUtf8("data: a").writeByte(0xFF).writeUtf8("b\n\n"));
        assertThat(r.next()).isEqualTo("a\uFFFDb");
    }
}
