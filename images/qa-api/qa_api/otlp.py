"""OpenTelemetry spans of a request over OTLP/HTTP (QA_OTLP_ENDPOINT), from its RequestTrace.

The spans are made when the request ends, from the stage times already measured: the
request is the root span, each stage a child with its own start and end. A batch
processor sends them from a background thread, so an unreachable collector costs the
request nothing (spans are dropped after its timeout, with a warning).
"""

try:
    from opentelemetry import trace as otel_trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    HAS_OTEL = True
except ImportError:  # the image ships it; a bare checkout may not
    HAS_OTEL = False

SCOPE = "qa_api"


class OtlpExporter:
    def __init__(self, settings):
        if not HAS_OTEL:
            raise RuntimeError("QA_OTLP_ENDPOINT is set but the opentelemetry packages are not "
                               "installed: use the llmops/qa-api image, or unset QA_OTLP_ENDPOINT")
        resource = Resource.create({"service.name": settings.otlp_service_name,
                                    "service.version": settings.version,
                                    "llmops.color": settings.color,
                                    "llmops.release": settings.release[:12]})
        self.provider = TracerProvider(resource=resource)
        endpoint = settings.otlp_endpoint.rstrip("/")
        if not endpoint.endswith("/v1/traces"):
            endpoint += "/v1/traces"
        self.provider.add_span_processor(BatchSpanProcessor(
            OTLPSpanExporter(endpoint=endpoint, timeout=settings.otlp_timeout),
            schedule_delay_millis=1000))
        self.tracer = self.provider.get_tracer(SCOPE)

    def export(self, trace, status):
        start = trace.start_ns
        root = self.tracer.start_span(
            "%s %s" % (trace.method, trace.path), start_time=start, kind=otel_trace.SpanKind.SERVER,
            attributes=dict({"llmops.request_id": trace.request_id, "http.request.method": trace.method,
                             "url.path": trace.path, "http.response.status_code": status},
                            **dict(("llmops.%s" % k, v) for k, v in trace.attributes.items())))
        context = otel_trace.set_span_in_context(root)
        for name, begin, end in trace.stages:
            span = self.tracer.start_span(name, context=context, start_time=start + int(begin * 1e9),
                                          attributes={"llmops.request_id": trace.request_id})
            span.end(end_time=start + int(end * 1e9))
        if status >= 500:
            root.set_status(otel_trace.Status(otel_trace.StatusCode.ERROR))
        # Called when the response has ended: every stage ended before now.
        root.end(end_time=start + int(trace.elapsed() * 1e9))

    def shutdown(self):
        self.provider.shutdown()
