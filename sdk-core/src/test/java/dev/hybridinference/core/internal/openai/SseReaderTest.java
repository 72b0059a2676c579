package dev.hybridinference.core.internal.openai;

import static org.assertj.core.api.Assertions.assertThat;

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
}
