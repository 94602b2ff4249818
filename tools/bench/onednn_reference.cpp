#include "tools/bench/onednn_reference.h"

#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <vector>

namespace bench {

void onednn_sgemm(int64_t m, int64_t n, int64_t k, const float* a, const float* b, float* c) {
  dnnl_sgemm('N', 'N', m, n, k, 1.f, a, k, b, n, 0.f, c, n);
}

std::function<void()> onednn_conv_step(int64_t n, int64_t h, int64_t w, int64_t c, int64_t f, int64_t k) {
  using namespace dnnl;
  using tag = memory::format_tag;
  using dt = memory::data_type;
  struct State {
    engine eng{engine::kind::cpu, 0};
    stream strm{eng};
    memory src, wei, bias, dst, diff_src, diff_wei, diff_bias, diff_dst;
    convolution_forward fwd;
    convolution_backward_data bwd_data;
    convolution_backward_weights bwd_weights;
    std::vector<float> buffers[5];
  };
  auto s = std::make_shared<State>();
  const int64_t oh = h - k + 1, ow = w - k + 1;
  memory::desc src_md({n, c, h, w}, dt::f32, tag::nhwc), dst_md({n, f, oh, ow}, dt::f32, tag::nhwc);
  memory::desc wei_any({f, c, k, k}, dt::f32, tag::any), bias_md({f}, dt::f32, tag::a);
  const memory::dims strides{1, 1}, pad{0, 0};
  convolution_forward::desc fd(prop_kind::forward_training, algorithm::convolution_direct, src_md, wei_any, bias_md,
                               dst_md, strides, pad, pad);
  convolution_forward::primitive_desc fpd(fd, s->eng);
  convolution_backward_data::primitive_desc bdpd(
      convolution_backward_data::desc(algorithm::convolution_direct, src_md, wei_any, dst_md, strides, pad, pad),
      s->eng, fpd);
  convolution_backward_weights::primitive_desc bwpd(
      convolution_backward_weights::desc(algorithm::convolution_direct, src_md, wei_any, bias_md, dst_md, strides, pad,
                                         pad),
      s->eng, fpd);
  s->fwd = convolution_forward(fpd);
  s->bwd_data = convolution_backward_data(bdpd);
  s->bwd_weights = convolution_backward_weights(bwpd);
  s->src = memory(src_md, s->eng);
  s->dst = memory(dst_md, s->eng);
  s->diff_dst = memory(dst_md, s->eng);
  s->diff_src = memory(src_md, s->eng);
  s->wei = memory(fpd.weights_desc(), s->eng);
  s->diff_wei = memory(bwpd.diff_weights_desc(), s->eng);
  s->bias = memory(bias_md, s->eng);
  s->diff_bias = memory(bias_md, s->eng);
  memory wei_bwd = bdpd.weights_desc() == fpd.weights_desc() ? s->wei : memory(bdpd.weights_desc(), s->eng);
  for (memory* m : {&s->src, &s->diff_dst, &s->wei, &s->bias}) {
    float* p = static_cast<float*>(m->get_data_handle());
    const size_t count = m->get_desc().get_size() / sizeof(float);
    for (size_t i = 0; i < count; ++i) p[i] = static_cast<float>((i * 2654435761u) % 1000) / 1000.f - 0.5f;
  }
  return [s, wei_bwd]() mutable {
    s->fwd.execute(
        s->strm,
        {{DNNL_ARG_SRC, s->src}, {DNNL_ARG_WEIGHTS, s->wei}, {DNNL_ARG_BIAS, s->bias}, {DNNL_ARG_DST, s->dst}});
    s->bwd_data.execute(
        s->strm, {{DNNL_ARG_DIFF_DST, s->diff_dst}, {DNNL_ARG_WEIGHTS, wei_bwd}, {DNNL_ARG_DIFF_SRC, s->diff_src}});
    s->bwd_weights.execute(s->strm, {{DNNL_ARG_SRC, s->src},
                                     {DNNL_ARG_DIFF_DST, s->diff_dst},
                                     {DNNL_ARG_DIFF_WEIGHTS, s->diff_wei},
                                     {DNNL_ARG_DIFF_BIAS, s->diff_bias}});
    s->strm.wait();
  };
}

}  // namespace bench
