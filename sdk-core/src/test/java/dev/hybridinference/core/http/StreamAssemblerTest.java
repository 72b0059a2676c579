package dev.hybridinference.core.http;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.hybridinference.core.ChatChunk;
import dev.hybridinference.core.ContextLengthExceededException;
import dev.hybridinference.core.FinishReason;
import dev.hybridinference.core.MalformedResponseException;
import dev.hybridinference.core.ProviderUnavailableException;
import dev.hybridinference.core.RateLimitedException;
import dev.hybridinference.core.ToolCall;
import dev.hybridinference.core.Usage;
import dev.hybridinference.core.spi.ProviderResult;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

class StreamAssemblerTest {
    private static StreamAssembler assembler() {
        return assembler(ResponseLimits.DEFAULTS);
    }

    private static StreamAssembler assembler(ResponseLimits limits) {
        return new StreamAssembler("p", "http://h:8000", "requested", 40, limits);
    }

    private static String content(String text, String finish) {
        return "{\"model\":\"served\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"" + text
                + "\"},\"finish_reason\":" + (finish == null ? "null" : "\"" + finish + "\"") + "}]}";
    }

    private static String tool(int index, String id, String name, String args) {
        return "{\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":" + index
                + (id == null ? "" : ",\"id\":\"" + id + "\"")
                + ",\"function\":{" + (name == null ? "" : "\"name\":\"" + name + "\",")
                + "\"arguments\":\"" + args + "\"}}]}}]}";
    }

    @Test
    void assemblesTextUsageFinishAndModel() {
        StreamAssembler a = assembler();
        assertThat(a.accept("{\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}"))
                .isNull();
        assertThat(a.accept(content("Hel", null))).isEqualTo(new ChatChunk("Hel", null));
        assertThat(a.accept(content("lo", "stop"))).isEqualTo(new ChatChunk("lo", FinishReason.STOP));
        assertThat(a.accept("{\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,"
                        + "\"prompt_tokens_details\":{\"cached_tokens\":4}}}"))
                .isNull();
        assertThat(a.isEnded()).isFalse();
        assertThat(a.accept(new StreamSplitter.Event("[DONE]", false))).isNull();
        assertThat(a.isEnded()).isTrue();
        ProviderResult r = a.result();
        assertThat(r.text()).isEqualTo("Hello");
        assertThat(r.finishReason()).isEqualTo(FinishReason.STOP);
        assertThat(r.usage()).isEqualTo(new Usage(9, 2, 4));
        assertThat(r.model()).isEqualTo("served");
    }

    @Test
    void whatAContentFilterBlockedIsKeptAsAnAttribute() {
        StreamAssembler a = assembler();
        a.accept("{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Once\"},"
                + "\"content_filter_results\":{\"violence\":{\"filtered\":false,\"severity\":\"safe\"}}}]}");
        assertThat(a.result().attributes()).doesNotContainKey(StreamAssembler.CONTENT_FILTER);
        ChatChunk last = a.accept("{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"content_filter\","
                + "\"content_filter_results\":{\"violence\":{\"filtered\":true,\"severity\":\"medium\"}}}]}");
        assertThat(last.finishReason()).isEqualTo(FinishReason.CONTENT_FILTER);
        assertThat(a.result().attributes()).containsEntry(StreamAssembler.CONTENT_FILTER, "violence (medium)");
    }

    @Test
    void toolCallFragmentsAreJoinedByIndex() {
        StreamAssembler a = assembler();
        assertThat(a.accept(tool(0, "call_a", "weather", "{\\\"ci"))).isEqualTo(new ChatChunk("", null));
        a.accept(tool(1, "call_b", "time", "{}"));
        a.accept(tool(0, null, null, "ty\\\":\\\"Oslo\\\"}"));
        a.accept("{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}");
        a.accept("[DONE]");
        assertThat(a.result().toolCalls())
                .containsExactly(
                        new ToolCall("call_a", "weather", "{\"city\":\"Oslo\"}"), new ToolCall("call_b", "time", "{}"));
        assertThat(a.result().finishReason()).isEqualTo(FinishReason.TOOL_CALLS);
    }

    @Test
    void aCutStreamEstimatesItsUsageAndKeepsTheRequestedModelUntilTheServerNamesOne() {
        StreamAssembler a = assembler();
        ProviderResult empty = a.result();
        assertThat(empty.model()).isEqualTo("requested");
        assertThat(empty.finishReason()).isEqualTo(FinishReason.OTHER);
        a.accept(content("one", null));
        a.accept(content(" two", null));
        ProviderResult r = a.result();
        assertThat(r.usage()).isEqualTo(Usage.estimated(10, 2));
        assertThat(r.text()).isEqualTo("one two");
        assertThat(r.model()).isEqualTo("served");
    }

    @Test
    void anEndedStreamWithoutContentOrUsageHasZeroUsage() {
        StreamAssembler a = assembler();
        a.accept("[DONE]");
        assertThat(a.result().usage()).isEqualTo(Usage.ZERO);
    }

    @Test
    void errorEventsInEveryShapeFailWithTheirType() {
        assertThatThrownBy(
                        () -> assembler().accept(new StreamSplitter.Event("{\"code\":429,\"message\":\"busy\"}", true)))
                .isInstanceOf(RateLimitedException.class)
                .hasMessageContaining("busy");
        assertThatThrownBy(() -> assembler()
                        .accept("{\"error\":{\"message\":\"maximum context length is 4096 tokens\","
                                + "\"code\":400}}"))
                .isInstanceOf(ContextLengthExceededException.class);
        assertThatThrownBy(() -> assembler().accept("{\"object\":\"error\",\"message\":\"engine died\",\"code\":500}"))
                .isInstanceOf(ProviderUnavailableException.class)
                .hasMessageContaining("engine died");
        assertThat(assembler().accept("{\"error\":null,\"choices\":[{\"index\":0,\"delta\":{\"content\":\"ok\"}}]}"))
                .isEqualTo(new ChatChunk("ok", null));
    }

    @Test
    void brokenChunksAndLimitsFailAsMalformed() {
        assertThatThrownBy(() -> assembler().accept("{\"choices\":[{\"delta\""))
                .isInstanceOf(MalformedResponseException.class)
                .hasMessageContaining("not valid JSON");
        assertThatThrownBy(() -> assembler().accept("[1,2]"))
                .isInstanceOf(MalformedResponseException.class)
                .hasMessageContaining("not a JSON object");
        ResponseLimits small = new ResponseLimits(1024, 1024, 2, 8, 1024);
        assertThatThrownBy(() -> assembler(small).accept(tool(2, "c", "f", "{}")))
                .isInstanceOf(MalformedResponseException.class)
                .hasMessageContaining("tool-call index 2 is outside 0..1");
        StreamAssembler a = assembler(small);
        a.accept(content("12345", null));
        assertThatThrownBy(() -> a.accept(content("6789", null)))
                .isInstanceOf(MalformedResponseException.class)
                .hasMessageContaining("limit of 8 characters");
    }

    @Test
    void aProviderDecodedStreamUsesTheSamePartialRules() {
        // TGI's token stream, as a SageMaker container sends it in JSON lines, decoded by the provider.
        StreamAssembler a = assembler();
        assertThat(a.appendText("Hi", null)).isEqualTo(new ChatChunk("Hi", null));
        assertThat(a.appendText("", FinishReason.LENGTH)).isEqualTo(new ChatChunk("", FinishReason.LENGTH));
        assertThat(a.result().usage().estimated()).isTrue();
        a.usage(new Usage(3, 1, 0));
        a.end();
        assertThat(a.result().usage()).isEqualTo(new Usage(3, 1, 0));
        assertThat(a.result().finishReason()).isEqualTo(FinishReason.LENGTH);
    }

    @Test
    void splitterAndAssemblerGiveTheSameAnswerHoweverTheBytesAreCut() {
        String body = "data: " + content("h\u00e9", null) + "\r\n\r\ndata: " + content(" \ud83d\ude00", "stop")
                + "\n\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2}}\n\ndata: [DONE]\n\n";
        byte[] bytes = body.getBytes(StandardCharsets.UTF_8);
        for (int cut = 0; cut <= bytes.length; cut++) {
            StreamSplitter s = new StreamSplitter(StreamSplitter.Format.SSE);
            StreamAssembler a = assembler();
            List<String> texts = new ArrayList<>();
            s.feed(bytes, 0, cut);
            for (StreamSplitter.Event e; (e = s.next()) != null; ) {
                ChatChunk c = a.accept(e);
                if (c != null) {
                    texts.add(c.text());
                }
            }
            s.feed(bytes, cut, bytes.length - cut);
            for (StreamSplitter.Event e; (e = s.next()) != null; ) {
                ChatChunk c = a.accept(e);
                if (c != null) {
                    texts.add(c.text());
                }
            }
            assertThat(texts).as("cut at %d", cut).containsExactly("h\u00e9", " \ud83d\ude00");
            assertThat(a.isEnded()).isTrue();
            assertThat(a.result().usage()).isEqualTo(new Usage(5, 2, 0));
        }
    }
}
