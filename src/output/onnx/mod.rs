//! ONNX export of a trained network: a standard graph (opset 17) that takes the raw input
//! the dataset holds (bytes for IDX images, floats otherwise), applies the training input
//! transform inside the graph, and returns class probabilities (or the regression output).
//!
//! The protobuf messages are a hand-declared subset of `onnx.proto` ([`proto`]), encoded by
//! `prost`.

pub mod proto;
#[cfg(test)]
mod tests;

use crate::data::InputScaling;
use crate::model::{Activation, Loss, Network};
use anyhow::{bail, Result};
use prost::Message;
use proto::*;

/// One dense layer: `y = act(x · W + b)`.
struct OnnxLayer {
    inputs: usize,
    outputs: usize,
    /// `inputs × outputs`, row-major (row = input index).
    weight: Vec<f32>,
    bias: Vec<f32>,
    activation: Activation,
}

/// What the graph takes per sample; the batch dimension `N` is added.
enum OnnxInput {
    /// uint8 tensor of `shape` (e.g. `[28, 28]`); `x = byte * mul + add`.
    Bytes {
        shape: Vec<usize>,
        mul: f32,
        add: f32,
    },
    /// float tensor `[N, width]`; `x = value * mul + add`.
    Floats { width: usize, mul: f32, add: f32 },
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum OnnxOutput {
    /// Softmax over axis 1, output named `probabilities`.
    Softmax,
    /// Sigmoid of the single logit (the probability of class 1), named `probabilities`.
    Sigmoid,
    /// Raw last layer, output named `output`.
    Identity,
}

/// The raw values a model was trained on, which the exported graph takes as its input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKind {
    /// IDX bytes, in the sample shape of the training data (e.g. `uint8 [N, 28, 28]`).
    Bytes,
    /// Float features, `float [N, inputs]`.
    Floats,
}

/// The ONNX model of `net`, taking `input` as the training data held it and transforming it
/// as `scaling` did in training. Classifiers return `probabilities` (softmax, or the sigmoid
/// of class 1 for binary cross-entropy); regressions return `output`.
pub fn export(net: &Network, scaling: &InputScaling, input: InputKind) -> Result<Vec<u8>> {
    let arch = &net.arch;
    let transform = scaling.transform();
    let input = match input {
        InputKind::Bytes => {
            let shape = arch.input_shape.clone();
            if shape.is_empty() || shape.iter().product::<usize>() != arch.inputs {
                bail!(
                    "the model's input shape {shape:?} does not hold its {} inputs",
                    arch.inputs
                );
            }
            let (mul, add) = transform.byte_coefficients();
            OnnxInput::Bytes { shape, mul, add }
        }
        InputKind::Floats => {
            let (mul, add) = transform.float_coefficients();
            OnnxInput::Floats {
                width: arch.inputs,
                mul,
                add,
            }
        }
    };
    let layers: Vec<OnnxLayer> = (0..net.layer_count())
        .map(|l| OnnxLayer {
            inputs: arch.layer_inputs(l),
            outputs: arch.layers[l].outputs,
            weight: net.weight(l).iter().copied().collect(),
            bias: net.bias(l).to_vec(),
            activation: arch.layers[l].activation,
        })
        .collect();
    let output = match arch.loss {
        Loss::SoftmaxCrossEntropy => OnnxOutput::Softmax,
        Loss::SigmoidBinaryCrossEntropy => OnnxOutput::Sigmoid,
        Loss::MeanSquaredError => OnnxOutput::Identity,
    };
    Ok(to_onnx_bytes(
        &input,
        &layers,
        output,
        env!("CARGO_PKG_VERSION"),
    ))
}

/// ONNX opset and the IR version that goes with it (onnx helper VERSION_TABLE).
pub const OPSET_VERSION: i64 = 17;
pub const IR_VERSION: i64 = 8;

/// Serialises the MLP as an ONNX model (opset 17, IR 8).
///
/// Graph: `input` → [Cast → Flatten] → [Mul] → [Add] → (Gemm → act)* → [Softmax]
/// → `probabilities` / `output`. Ops that would be no-ops (mul = 1, add = 0,
/// Identity activation) are left out.
///
/// # Panics
/// If the layer sizes are inconsistent with each other or with the input.
fn to_onnx_bytes(
    input: &OnnxInput,
    layers: &[OnnxLayer],
    output: OnnxOutput,
    producer_version: &str,
) -> Vec<u8> {
    build_model(input, layers, output, producer_version).encode_to_vec()
}

fn build_model(
    input: &OnnxInput,
    layers: &[OnnxLayer],
    output: OnnxOutput,
    producer_version: &str,
) -> ModelProto {
    let mut g = GraphBuilder::default();
    let (features, mul, add, input_info) = match input {
        OnnxInput::Bytes { shape, mul, add } => {
            assert!(!shape.is_empty(), "byte input shape must not be empty");
            let mut dims = vec![batch_dim()];
            dims.extend(shape.iter().map(|&d| fixed_dim(d)));
            (
                shape.iter().product::<usize>(),
                *mul,
                *add,
                value_info(INPUT_NAME, DATA_TYPE_UINT8, dims),
            )
        }
        OnnxInput::Floats { width, mul, add } => (
            *width,
            *mul,
            *add,
            value_info(
                INPUT_NAME,
                DATA_TYPE_FLOAT,
                vec![batch_dim(), fixed_dim(*width)],
            ),
        ),
    };
    check_layers(features, layers);

    let mut cur = INPUT_NAME.to_string();
    if let OnnxInput::Bytes { shape, .. } = input {
        cur = g.node(
            "Cast",
            "cast",
            &[&cur],
            vec![attr_int("to", DATA_TYPE_FLOAT as i64)],
        );
        // Flatten rather than Reshape: no shape initializer, keeps N dynamic.
        if shape.len() > 1 {
            cur = g.node("Flatten", "flatten", &[&cur], vec![attr_int("axis", 1)]);
        }
    }
    if mul != 1.0 {
        let c = g.initializer("scale/mul", &[], &[mul]);
        cur = g.node("Mul", "scale", &[&cur, &c], vec![]);
    }
    if add != 0.0 {
        let c = g.initializer("shift/add", &[], &[add]);
        cur = g.node("Add", "shift", &[&cur, &c], vec![]);
    }
    for (i, layer) in layers.iter().enumerate() {
        let w = g.initializer(
            &format!("layer{i}/weight"),
            &[layer.inputs, layer.outputs],
            &layer.weight,
        );
        let b = g.initializer(&format!("layer{i}/bias"), &[layer.outputs], &layer.bias);
        // Gemm: one node per layer; bias [out] broadcasts over N.
        cur = g.node("Gemm", &format!("layer{i}/gemm"), &[&cur, &w, &b], vec![]);
        let act = |op: &str| format!("layer{i}/{op}");
        cur = match layer.activation {
            Activation::Relu => g.node("Relu", &act("relu"), &[&cur], vec![]),
            Activation::LeakyRelu { slope } => g.node(
                "LeakyRelu",
                &act("leaky_relu"),
                &[&cur],
                vec![attr_float("alpha", slope)],
            ),
            Activation::Sigmoid => g.node("Sigmoid", &act("sigmoid"), &[&cur], vec![]),
            Activation::Tanh => g.node("Tanh", &act("tanh"), &[&cur], vec![]),
            Activation::Identity => cur,
            // x σ(x): opset 17 has no SiLU operator.
            Activation::Silu => {
                let s = g.node("Sigmoid", &act("silu_sigmoid"), &[&cur], vec![]);
                g.node("Mul", &act("silu"), &[&cur, &s], vec![])
            }
        };
    }
    let out_name = match output {
        OnnxOutput::Softmax => {
            cur = g.node("Softmax", "softmax", &[&cur], vec![attr_int("axis", 1)]);
            PROBABILITIES_NAME
        }
        OnnxOutput::Sigmoid => {
            cur = g.node("Sigmoid", "sigmoid", &[&cur], vec![]);
            PROBABILITIES_NAME
        }
        OnnxOutput::Identity => OUTPUT_NAME,
    };
    g.rename_final(&cur, out_name);
    let out_width = layers.last().map_or(features, |l| l.outputs);

    ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET_VERSION,
        }],
        producer_name: "backprop".to_string(),
        producer_version: producer_version.to_string(),
        graph: Some(GraphProto {
            node: g.nodes,
            name: "backprop_mlp".to_string(),
            initializer: g.initializers,
            input: vec![input_info],
            output: vec![value_info(
                out_name,
                DATA_TYPE_FLOAT,
                vec![batch_dim(), fixed_dim(out_width)],
            )],
        }),
    }
}

fn check_layers(features: usize, layers: &[OnnxLayer]) {
    let mut width = features;
    for (i, l) in layers.iter().enumerate() {
        assert_eq!(
            l.inputs, width,
            "layer {i}: takes {} inputs, previous width is {width}",
            l.inputs
        );
        assert_eq!(
            l.weight.len(),
            l.inputs * l.outputs,
            "layer {i}: weight length"
        );
        assert_eq!(l.bias.len(), l.outputs, "layer {i}: bias length");
        width = l.outputs;
    }
}

const INPUT_NAME: &str = "input";
const PROBABILITIES_NAME: &str = "probabilities";
const OUTPUT_NAME: &str = "output";
// TensorProto.DataType values.
const DATA_TYPE_FLOAT: i32 = 1;
const DATA_TYPE_UINT8: i32 = 2;
// AttributeProto.AttributeType values.
const ATTR_FLOAT: i32 = 1;
const ATTR_INT: i32 = 2;

#[derive(Default)]
struct GraphBuilder {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
}

impl GraphBuilder {
    /// Adds a node whose single output is named after the node; returns that name.
    fn node(
        &mut self,
        op_type: &str,
        name: &str,
        inputs: &[&str],
        attribute: Vec<AttributeProto>,
    ) -> String {
        let out = name.to_string();
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.clone()],
            name: name.to_string(),
            op_type: op_type.to_string(),
            attribute,
        });
        out
    }

    fn initializer(&mut self, name: &str, dims: &[usize], data: &[f32]) -> String {
        self.initializers.push(TensorProto {
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: DATA_TYPE_FLOAT,
            name: name.to_string(),
            // raw_data is little-endian by spec, independent of host order.
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        });
        name.to_string()
    }

    /// Gives the graph output its public name. With no nodes at all (float input,
    /// no scaling, no layers) an Identity node is needed, since a graph input
    /// cannot double as an output with a different name.
    fn rename_final(&mut self, cur: &str, name: &str) {
        match self.nodes.last_mut() {
            Some(last) if last.output[0] == cur => last.output[0] = name.to_string(),
            _ => {
                self.nodes.push(NodeProto {
                    input: vec![cur.to_string()],
                    output: vec![name.to_string()],
                    name: "identity".to_string(),
                    op_type: "Identity".to_string(),
                    attribute: vec![],
                });
            }
        }
    }
}

fn attr_int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: ATTR_INT,
        i,
        ..Default::default()
    }
}

fn attr_float(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        r#type: ATTR_FLOAT,
        f,
        ..Default::default()
    }
}

fn batch_dim() -> tensor_shape_proto::Dimension {
    tensor_shape_proto::Dimension {
        value: Some(tensor_shape_proto::dimension::Value::DimParam(
            "N".to_string(),
        )),
    }
}

fn fixed_dim(d: usize) -> tensor_shape_proto::Dimension {
    tensor_shape_proto::Dimension {
        value: Some(tensor_shape_proto::dimension::Value::DimValue(d as i64)),
    }
}

fn value_info(
    name: &str,
    elem_type: i32,
    dims: Vec<tensor_shape_proto::Dimension>,
) -> ValueInfoProto {
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type,
                shape: Some(TensorShapeProto { dim: dims }),
            })),
        }),
    }
}
