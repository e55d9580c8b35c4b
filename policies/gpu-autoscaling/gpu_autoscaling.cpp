// gpu-autoscaling: an autoscaler that scales GPU pods must not undo them faster than they come
// back. A GPU replica taken down at a dip reloads its model (minutes) when load returns, and a
// workload scaled to zero makes the first request after idle wait for a whole cold start.
// Reviews HorizontalPodAutoscalers and KEDA ScaledObjects whose target uses GPUs.
#include "policies/policies.h"
#include "policies/scale_targets.h"
#include "policies/validation.h"

namespace gpuadmit::policies {
namespace {

struct AutoscalingConfig {
  std::int64_t min_scale_down_window = 600;
  std::int64_t scale_to_zero_max_load = 60;
  CheckLevel scale_down_window = CheckLevel::Violation;
  CheckLevel scale_to_zero = CheckLevel::Violation;
};

std::string seconds_text(std::int64_t seconds) { return std::to_string(seconds) + " s"; }

class GpuAutoscaling final : public Policy {
 public:
  explicit GpuAutoscaling(AutoscalingConfig config) : config_(config) {}

  void run(PolicyContext& context) const override {
    if (!context.workload.scale_target) return;
    const ScaleTarget& target = *context.workload.scale_target;
    // KEDA's own HPA mirrors its ScaledObject, which was reviewed; its warnings would reach no one.
    if (target.managed_by_keda) return;
    if (config_.scale_down_window == CheckLevel::Off && config_.scale_to_zero == CheckLevel::Off) return;
    const ResolvedScaleTarget resolved = resolve_scale_target(context, target);
    if (!resolved.found) {
      context.advise("spec.scaleTargetRef", unresolved_text(context, target));
      return;
    }
    if (resolved.gpus_per_pod <= 0 && !resolved.gpus_unresolved) return;  // not a GPU workload
    const std::string what = target_text(target) + " (GPU pods, per " + resolved.where + ")";
    check_window(context, target, what);
    check_scale_to_zero(context, target, resolved, what);
  }

 private:
  void check_window(PolicyContext& context, const ScaleTarget& target, const std::string& what) const {
    if (config_.scale_down_window == CheckLevel::Off || target.scale_down_disabled) return;
    if (target.scale_down_window >= config_.min_scale_down_window) return;
    const std::string how = target.scale_down_window_written ? "" : " (the default: the field is not set)";
    report(context, config_.scale_down_window, target.window_field,
           "scale-down stabilization of " + seconds_text(target.scale_down_window) + how + " for " + what +
               ": a replica removed at a dip reloads its model when load returns; set it to at least " +
               seconds_text(config_.min_scale_down_window));
  }

  void check_scale_to_zero(PolicyContext& context, const ScaleTarget& target, const ResolvedScaleTarget& resolved,
                           const std::string& what) const {
    if (config_.scale_to_zero == CheckLevel::Off) return;
    std::string field, how;
    if (target.min_replicas == 0) {
      field = target.min_field;
      how = target.keda && !target.min_replicas_written ? target.min_field + " is 0 (KEDA's default)" : target.min_field + " is 0";
    } else if (target.keda && target.idle_replicas && *target.idle_replicas == 0) {
      field = "spec.idleReplicaCount";
      how = "idleReplicaCount is 0";
    } else {
      return;
    }
    if (!resolved.model_load_seconds) {
      context.advise(field, "could not check scale to zero: " + how + " and the model-load time of " + what +
                                " is unknown; annotate its pod template with gpu-admit.io/model-load-seconds or give it a startupProbe");
      return;
    }
    if (*resolved.model_load_seconds <= config_.scale_to_zero_max_load) return;
    report(context, config_.scale_to_zero, field,
           how + ": " + what + " scales to zero, and its model-load budget is " +
               seconds_text(*resolved.model_load_seconds) + " (over " + seconds_text(config_.scale_to_zero_max_load) +
               "): the first request after idle waits that long, past most gateways' timeouts; keep at least 1 replica");
  }

  AutoscalingConfig config_;
};

}  // namespace

PolicyInfo gpu_autoscaling_info() {
  return {"gpu-autoscaling", PolicyKind::Validating,
          "reviews HorizontalPodAutoscalers and KEDA ScaledObjects that scale GPU pods: scale-down stabilization and scale to zero against model-load time",
          {
           {"minScaleDownWindowSeconds", "integer", "600",
            "the least scale-down stabilization window (`behavior.scaleDown.stabilizationWindowSeconds`; 300 when unset, and always 300 in autoscaling/v1) for an autoscaler of GPU pods"},
           {"scaleToZeroMaxLoadSeconds", "integer", "60",
            "the longest model-load budget (`gpu-admit.io/model-load-seconds`, else the longest startupProbe: initialDelaySeconds + failureThreshold × periodSeconds) of a workload that may scale to zero (`minReplicas: 0`, KEDA `minReplicaCount: 0` or `idleReplicaCount: 0`)"},
           {"scaleDownWindow", "level", "violation", "an autoscaler of GPU pods whose scale-down window is under `minScaleDownWindowSeconds`"},
           {"scaleToZero", "level", "violation",
            "an autoscaler that scales GPU pods to zero whose model-load budget is over `scaleToZeroMaxLoadSeconds`"}},
          [](const ConfigNode& node, const PolicyBuildContext&) -> std::unique_ptr<Policy> {
            AutoscalingConfig config;
            config.min_scale_down_window = node.integer("minScaleDownWindowSeconds", 600);
            if (config.min_scale_down_window < 0 || config.min_scale_down_window > 3600)
              node.child("minScaleDownWindowSeconds").fail("must be from 0 to 3600 (the API server's bound on the window)");
            config.scale_to_zero_max_load = node.integer("scaleToZeroMaxLoadSeconds", 60);
            if (config.scale_to_zero_max_load < 0)
              node.child("scaleToZeroMaxLoadSeconds").fail("must be 0 or more");
            config.scale_down_window = parse_check_level(node.child("scaleDownWindow"), CheckLevel::Violation);
            config.scale_to_zero = parse_check_level(node.child("scaleToZero"), CheckLevel::Violation);
            return std::make_unique<GpuAutoscaling>(config);
          },
          /*reads_cluster=*/true};
}

}  // namespace gpuadmit::policies
