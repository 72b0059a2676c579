package dev.hybridinference.vllm.internal;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class PrometheusTextTest {
    @Test
    void sumsAndMaxesOverLabelSetsAndSkipsComments() {
        PrometheusText p = PrometheusText.parse("# HELP vllm:num_requests_waiting Waiting.\n"
                + "# TYPE vllm:num_requests_waiting gauge\n"
                + "vllm:num_requests_waiting{engine=\"0\",model_name=\"a\"} 3.0\n"
                + "vllm:num_requests_waiting{engine=\"1\",model_name=\"a\"} 4\n"
                + "vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"a\"} 0.25\n"
                + "vllm:kv_cache_usage_perc{engine=\"1\",model_name=\"a\"} 0.75 1712345678000\n"
                + "vllm:num_requests_running 2\r\n");
        assertThat(p.sum("vllm:num_requests_waiting")).isEqualTo(7.0);
        assertThat(p.max("vllm:kv_cache_usage_perc")).isEqualTo(0.75);
        assertThat(p.sum("vllm:num_requests_running")).isEqualTo(2.0);
        assertThat(p.sum("vllm:absent")).isNaN();
        assertThat(p.has("vllm:absent")).isFalse();
    }

    @Test
    void labelValuesMayHoldBracesSpacesAndEscapedQuotes() {
        PrometheusText p = PrometheusText.parse(
                "vllm:num_requests_waiting{model_name=\"we}ird \\\"name\\\" {x}\",engine=\"0\"} 5\n");
        assertThat(p.sum("vllm:num_requests_waiting")).isEqualTo(5.0);
    }

    @Test
    void specialValuesAndGarbageAreHandled() {
        PrometheusText p = PrometheusText.parse("a +Inf\nb NaN\nc not-a-number\n{broken\nd{x=\"1\" 3\n   \n e 1e2\n");
        assertThat(p.sum("a")).isInfinite();
        assertThat(p.has("b")).isFalse();
        assertThat(p.has("c")).isFalse();
        assertThat(p.has("d")).isFalse();
        assertThat(p.sum("e")).isEqualTo(100.0);
    }
}
