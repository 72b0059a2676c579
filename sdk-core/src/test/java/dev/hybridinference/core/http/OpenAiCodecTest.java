package dev.hybridinference.core.http;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.FinishReason;
import dev.hybridinference.core.InvalidRequestException;
import dev.hybridinference.core.MalformedResponseException;
import dev.hybridinference.core.ProviderUnavailableException;
import dev.hybridinference.core.ToolCall;
import dev.hybridinference.core.Usage;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class OpenAiCodecTest {
    private static OpenAiCodec.Completion decode(String json) {
        return decode(json.getBytes(StandardCharsets.UTF_8));
    }

    private static OpenAiCodec.Completion decode(byte[] json) {
        return OpenAiCodec.decodeCompletion(json, "p", "http://h:8000", ResponseLimits.DEFAULTS);
    }

    @Test
    void decodesTheFirstChoiceWhateverTheFieldOrder() {
        OpenAiCodec.Completion c = decode("{\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":2,"
                + "\"prompt_tokens_details\":{\"cached_tokens\":3}},\"choices\":[{\"finish_reason\":\"length\","
                + "\"message\":{\"role\":\"assistant\",\"content\":\"hi\",\"extra\":[1,{\"a\":2}]},\"index\":0},"
                + "{\"message\":{\"content\":\"second\"}}],\"model\":\"m-1\",\"id\":\"x\"}");
        assertThat(c.text()).isEqualTo("hi");
        assertThat(c.finishReason()).isEqualTo(FinishReason.LENGTH);
        assertThat(c.usage()).isEqualTo(new Usage(5, 2, 3));
        assertThat(c.model()).isEqualTo("m-1");
        assertThat(c.toolCalls()).isEmpty();
    }

    @Test
    void azuresContentFilterAnnotationsSayWhatWasBlocked() {
        OpenAiCodec.Completion clean = decode("{\"prompt_filter_results\":[{\"prompt_index\":0,"
                + "\"content_filter_results\":{\"hate\":{\"filtered\":false,\"severity\":\"safe\"}}}],"
                + "\"choices\":[{\"message\":{\"content\":\"ok\"},\"finish_reason\":\"stop\","
                + "\"content_filter_results\":{\"hate\":{\"filtered\":false,\"severity\":\"safe\"}}}]}");
        assertThat(clean.contentFilter()).isEmpty();
        OpenAiCodec.Completion cut = decode("{\"choices\":[{\"message\":{\"content\":\"Once upon\"},"
                + "\"finish_reason\":\"content_filter\",\"content_filter_results\":{\"self_harm\":{\"filtered\":true,"
                + "\"severity\":\"medium\"},\"hate\":{\"filtered\":false,\"severity\":\"safe\"}}}],"
                + "\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":2}}");
        assertThat(cut.finishReason()).isEqualTo(FinishReason.CONTENT_FILTER);
        assertThat(cut.contentFilter()).isEqualTo("self_harm (medium)");
        assertThat(cut.usage()).isEqualTo(new Usage(4, 2, 0));
    }

    @Test
    void usageIsReadInEveryNumberShapeServersSend() {
        String choice = "\"choices\":[{\"message\":{\"content\":\"x\"}}]";
        assertThat(decode("{" + choice + ",\"usage\":{\"prompt_tokens\":\"12\",\"completion_tokens\":3.0,"
                                + "\"total_tokens\":15,\"prompt_tokens_details\":null}}")
                        .usage())
                .isEqualTo(new Usage(12, 3, 0));
        assertThat(decode("{" + choice + ",\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":-2,"
                                + "\"prompt_tokens_details\":{\"audio_tokens\":1,\"cached_tokens\":9}}}")
                        .usage())
                .as("negative counts are zero, cached tokens at most the prompt")
                .isEqualTo(new Usage(4, 0, 4));
        assertThat(decode("{" + choice + ",\"usage\":[1,2]}").usage()).isEqualTo(Usage.ZERO);
        StreamAssembler a = new StreamAssembler("p", "e", "m", 0, ResponseLimits.DEFAULTS);
        a.accept("{\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":\"2\"}}");
        assertThat(a.result().usage()).isEqualTo(new Usage(7, 2, 0));
    }

    @Test
    void decodesToolCallsWithStringOrObjectArguments() {
        OpenAiCodec.Completion c = decode("{\"choices\":[{\"message\":{\"content\":null,\"tool_calls\":["
                + "{\"id\":\"a\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"x\\\":1}\"}},"
                + "{\"id\":\"b\",\"function\":{\"name\":\"g\",\"arguments\":{\"y\":2}}}]},"
                + "\"finish_reason\":\"tool_calls\"}]}");
        assertThat(c.text()).isEmpty();
        assertThat(c.toolCalls())
                .containsExactly(new ToolCall("a", "f", "{\"x\":1}"), new ToolCall("b", "g", "{\"y\":2}"));
        assertThat(c.finishReason()).isEqualTo(FinishReason.TOOL_CALLS);
        assertThat(c.usage()).isEqualTo(Usage.ZERO);
        ResponseLimits one = new ResponseLimits(1024, 1024, 1, 1024, 1024);
        assertThatThrownBy(() -> OpenAiCodec.decodeCompletion(
                        ("{\"choices\":[{\"message\":{\"tool_calls\":[{\"id\":\"a\"},{\"id\":\"b\"}]}}]}")
                                .getBytes(StandardCharsets.UTF_8),
                        "p",
                        "e",
                        one))
                .isInstanceOf(MalformedResponseException.class)
                .hasMessageContaining("2 tool calls, more than the limit of 1");
    }

    @Test
    void anErrorObjectWithASuccessStatusFailsAsThatError() {
        assertThatThrownBy(() -> decode("{\"error\":{\"message\":\"bad model\",\"code\":404}}"))
                .isInstanceOf(InvalidRequestException.class)
                .hasMessageContaining("bad model");
        assertThatThrownBy(() -> decode("{\"object\":\"error\",\"message\":\"engine died\",\"code\":500}"))
                .isInstanceOf(ProviderUnavailableException.class)
                .hasMessageContaining("engine died");
    }

    @Test
    void whatIsNotACompletionIsMalformed() {
        assertThatThrownBy(() -> decode("[1]")).hasMessageContaining("not a JSON object");
        assertThatThrownBy(() -> decode("")).hasMessageContaining("not a JSON object");
        assertThatThrownBy(() -> decode("{\"choices\":[]}")).hasMessageContaining("no choices");
        assertThatThrownBy(() -> decode("{\"choices\":{}}")).hasMessageContaining("no choices");
        assertThatThrownBy(() -> decode("{\"choices\":[{\"message\":\"hi\"}]}"))
                .hasMessageContaining("first choice has no message");
        assertThatThrownBy(() -> decode("{\"choices\":[{\"message\":{\"content\":\"x\"}}"))
                .isInstanceOf(MalformedResponseException.class)
                .hasMessageContaining("not valid JSON");
    }

    @Test
    void invalidUtf8IsReplacedNotRefused() {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes("{\"choices\":[{\"message\":{\"content\":\"a".getBytes(StandardCharsets.UTF_8));
        out.writeBytes(new byte[] {(byte) 0xC3, (byte) 0x28, (byte) 0xFF});
        out.writeBytes("b\"}}]}".getBytes(StandardCharsets.UTF_8));
        assertThat(decode(out.toByteArray()).text())
                .startsWith("a")
                .endsWith("b")
                .contains("\uFFFD");
    }

    @Test
    void encodesTheRequestWithTheDialectsFields() {
        ChatRequest r = ChatRequest.builder().user("hi").topK(5).maxTokens(7).build();
        String openai =
                new String(OpenAiCodec.encodeRequest(r, "m", true, OpenAiCodec.Dialect.OPENAI), StandardCharsets.UTF_8);
        String vllm =
                new String(OpenAiCodec.encodeRequest(r, "m", false, OpenAiCodec.Dialect.VLLM), StandardCharsets.UTF_8);
        assertThat(openai)
                .isEqualTo("{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"max_tokens\":7,"
                        + "\"stream\":true,\"stream_options\":{\"include_usage\":true}}");
        assertThat(vllm).contains("\"top_k\":5").doesNotContain("stream");
    }
}
