package dev.hybridinference.core.internal;

import dev.hybridinference.core.ChatRequest;
import dev.hybridinference.core.InferenceClient;
import dev.hybridinference.core.InferenceClients;
import dev.hybridinference.core.http.OpenAiCodec;
import dev.hybridinference.core.internal.openai.ChunkDecoder;
import java.nio.charset.StandardCharsets;

/**
 * Run by {@link LibraryLinkageTest} in a JVM of its own, with other library jars: loads a YAML configuration,
 * makes a call, and encodes and decodes OpenAI JSON, printing {@code probe ok} when all of it worked.
 */
final class LinkageProbe {
    private LinkageProbe() {}

    public static void main(String[] args) throws Exception {
        try (InferenceClient c = InferenceClients.fromConfig("providers:\n  main:\n    type: echo\n")) {
            String text =
                    c.chat(ChatRequest.builder().user("linked fine").build()).text();
            byte[] body = OpenAiCodec.encodeRequest(
                    ChatRequest.builder().user("hi").build(), "m", true, OpenAiCodec.Dialect.VLLM);
            ChunkDecoder.Fields fields = new ChunkDecoder.Fields();
            ChunkDecoder.decode(
                    "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"},\"finish_reason\":null}]}", fields);
            String chunk = fields.content;
            System.out.println("probe ok: " + text + ", " + new String(body, StandardCharsets.UTF_8).length()
                    + " bytes, chunk " + chunk);
        }
    }
}
