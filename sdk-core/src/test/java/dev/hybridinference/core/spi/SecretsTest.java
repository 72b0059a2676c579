package dev.hybridinference.core.spi;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.hybridinference.core.Attempt;
import dev.hybridinference.core.InferenceException;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class SecretsTest {
    @Test
    void masksRegisteredValuesWherever_theyStand() {
        Secrets.register("  hunter2-registered-value ");
        assertThat(Secrets.redact("a hunter2-registered-value b hunter2-registered-value"))
                .isEqualTo("a [REDACTED] b [REDACTED]");
        assertThat(Secrets.containsRegistered("x hunter2-registered-value")).isTrue();
    }

    @Test
    void ignoresValuesTooShortToMaskSafely() {
        Secrets.register("abc");
        Secrets.register("");
        Secrets.register(null);
        assertThat(Secrets.redact("abc is fine")).isEqualTo("abc is fine");
    }

    @Test
    void masksCredentialsThatWereNeverRegistered() {
        assertThat(Secrets.redact("sent Authorization: Bearer eyJhbGciOi.x-y_z and more"))
                .isEqualTo("sent Authorization: Bearer [REDACTED] and more");
        assertThat(Secrets.redact("{\"api-key\":\"0123456789abcdef\"}")).isEqualTo("{\"api-key\":\"[REDACTED]\"}");
        assertThat(Secrets.redact("headers {authorization=[Bearer tok-123456]}"))
                .isEqualTo("headers {authorization=[Bearer [REDACTED]]}");
        assertThat(Secrets.redact("password=swordfish1;")).isEqualTo("password=[REDACTED];");
        assertThat(Secrets.redact("no secrets here: HTTP 500")).isEqualTo("no secrets here: HTTP 500");
        assertThat(Secrets.redact("cannot reach https://bob:pa55word-x@host:8000/v1 now"))
                .isEqualTo("cannot reach https://bob:[REDACTED]@host:8000/v1 now");
        assertThat(Secrets.redact("mail me at bob@example.com")).isEqualTo("mail me at bob@example.com");
    }

    @Test
    void exceptionMessagesCausesAndAttemptsAreRedacted() {
        Secrets.register("sk-cause-secret-9876");
        InferenceException e = new InferenceException(
                "server said: key sk-cause-secret-9876 is invalid",
                "p",
                "http://h",
                401,
                null,
                new IOException("echo: sk-cause-secret-9876", new IllegalStateException("sk-cause-secret-9876")));
        StringWriter trace = new StringWriter();
        e.printStackTrace(new PrintWriter(trace));
        assertThat(trace.toString()).doesNotContain("sk-cause-secret-9876").contains("java.io.IOException");
        Attempt a = new Attempt("p", "", "", Attempt.Outcome.FAILED, Duration.ZERO, "error sk-cause-secret-9876");
        assertThat(a.error()).isEqualTo("error [REDACTED]");
    }

    @Test
    void anExceptionWithoutSecretsKeepsItsOwnCause() {
        IOException cause = new IOException("connection reset");
        InferenceException e = new InferenceException("failed", "p", null, 0, null, cause);
        assertThat(e.getCause()).isSameAs(cause);
    }

    @Test
    void aRefreshingTokenDoesNotGrowTheRegistryWithoutBound() {
        for (int i = 0; i < Secrets.MAX_VALUES + 50; i++) {
            Secrets.register("rotating-token-" + i);
        }
        String newest = "rotating-token-" + (Secrets.MAX_VALUES + 49);
        assertThat(Secrets.redact(newest)).isEqualTo("[REDACTED]");
        assertThat(Secrets.containsRegistered("rotating-token-0 ")).isFalse();
    }

    @Test
    void aRememberedAttributeCopyIsRedactedAgainAfterANewSecretIsRegistered() {
        Map<String, String> attributes = Map.of("replica", "http://gpu-7:8000/tenant-key-4411");
        Map<String, String> first = Secrets.redactedCopy(attributes);
        assertThat(first).containsEntry("replica", "http://gpu-7:8000/tenant-key-4411");
        // The same content again: the remembered copy, equal in every way.
        assertThat(Secrets.redactedCopy(Map.of("replica", "http://gpu-7:8000/tenant-key-4411")))
                .isEqualTo(first);

        Secrets.register("tenant-key-4411");

        assertThat(Secrets.redactedCopy(attributes)).containsEntry("replica", "http://gpu-7:8000/[REDACTED]");
    }

    @Test
    void aMapChangedAfterItWasCopiedIsCopiedWithItsNewContent() {
        Map<String, String> attributes = new LinkedHashMap<>();
        attributes.put("region", "eu-west-1");
        attributes.put("replica", "http://a:8000");
        assertThat(Secrets.redactedCopy(attributes)).containsEntry("replica", "http://a:8000");

        attributes.put("replica", "http://b:8000");
        Map<String, String> second = Secrets.redactedCopy(attributes);
        assertThat(second).containsEntry("replica", "http://b:8000").containsEntry("region", "eu-west-1");
        // Keys in order whatever order the caller's map keeps them in.
        assertThat(List.copyOf(second.keySet())).containsExactly("region", "replica");
    }

    @Test
    void attributeCopiesAreUnmodifiableAndCredentialsInValuesAreMasked() {
        Map<String, String> copy = Secrets.redactedCopy(Map.of("echo", "Authorization: Bearer abcdef123456"));
        assertThat(copy).containsEntry("echo", "Authorization: Bearer [REDACTED]");
        assertThat(Secrets.redactedCopy(Map.of("echo", "Authorization: Bearer abcdef123456")))
                .containsEntry("echo", "Authorization: Bearer [REDACTED]");
        assertThatThrownBy(() -> copy.put("x", "y")).isInstanceOf(UnsupportedOperationException.class);
    }
}
